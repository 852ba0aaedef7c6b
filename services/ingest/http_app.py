"""HTTP ingest: `POST /v1/readings` through the gate to `citystream.readings.<domain>.v1` and the rejected topic.

A request is authenticated first (its credential must be valid for some sensor of the register): a failing one is
answered 401 with one summary and at most one dead letter, never one per reading, and a client address that keeps
failing gets 429 (services/common/source_limit.py) before its body is read.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response

from schemas.common import SENSOR_ID_PATTERN
from schemas.rejections import RejectionReason as Reason
from services.common.collector import settle_when_ready
from services.common.errors import DependencyUnavailable
from services.common.metrics import metrics_payload
from services.common.readiness import readiness
from services.common.source_limit import SourceLimiter
from services.ingest import metrics
from services.ingest.batch import (
    BatchAnswer,
    answer,
    authenticates,
    gate_batch,
    prefers_minimal,
    request_error,
    source_limited,
    unauthenticated,
)
from services.ingest.credentials import CredentialCheck, PresentedCredential, parse_bearer
from services.ingest.gate import Admitted, Rejected
from services.ingest.leases import gate_batch_leased
from services.ingest.openapi import (
    METRICS_RESPONSES,
    READINGS_OPENAPI_EXTRA,
    READINGS_RESPONSES,
    READYZ_RESPONSES,
    install_openapi,
)
from services.ingest.records import admitted_record, printable_document, rejected_record
from services.ingest.runtime import GateRuntime
from services.ingest.settings import IngestSettings

log = logging.getLogger(__name__)


EXCERPT_BYTES = 2048  # how much of a refused request's body its dead letter keeps
SENSOR_ID = re.compile(SENSOR_ID_PATTERN)


class BodyTooLarge(Exception):
    def __init__(self, head: bytes = b"") -> None:
        super().__init__("body over the limit")
        self.head = head  # the first bytes read, for the dead letter


async def read_limited(request: Request, limit_bytes: int) -> bytes:
    """The body, refused as soon as it passes `limit_bytes` — also when chunked without Content-Length."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit_bytes:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        chunks.append(chunk)
        if size > limit_bytes:
            raise BodyTooLarge(b"".join(chunks)[:EXCERPT_BYTES])
    return b"".join(chunks)


def parse_body(body: bytes) -> tuple[Any, bool]:
    """(document, lenient). orjson first; the standard library only as fallback (lenient), so NaN/Infinity reach
    the gate as OUT_OF_RANGE. The fallback also accepts lone surrogate escapes, which the gate then refuses."""
    try:
        return orjson.loads(body), False
    except orjson.JSONDecodeError:
        return json.loads(body), True


def create_app(settings: IngestSettings, runtime: GateRuntime | None = None) -> FastAPI:
    """The FastAPI app. Without a `runtime`, its lifespan builds, starts and stops one (the process entrypoint)."""
    holder: dict[str, GateRuntime] = {}
    if runtime is not None:
        holder["runtime"] = runtime

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        owned = "runtime" not in holder
        if owned:
            holder["runtime"] = GateRuntime.build(settings, "http")  # aiokafka needs the running loop
            holder["runtime"].start()
            # A process-wide setting: only the process entrypoint (which owns its runtime) tunes the collector.
            settling = asyncio.create_task(settle_when_ready(holder["runtime"].view.ready), name="gc-settle")
        try:
            yield
        finally:
            if owned:
                settling.cancel()
                await asyncio.gather(settling, return_exceptions=True)
                await holder.pop("runtime").stop()

    app = FastAPI(title="CityStream ingest", lifespan=lifespan)
    failing_sources = SourceLimiter(settings.auth_failures_per_minute, settings.auth_failures_burst)

    @app.post("/v1/readings", responses=READINGS_RESPONSES, openapi_extra=READINGS_OPENAPI_EXTRA,
              response_class=Response)
    async def post_readings(request: Request) -> Response:
        result, letter = await _handle(request)
        if letter is not None:
            await _dead_letter(result, letter)
        headers = {"Retry-After": str(result.retry_after_s)} if result.retry_after_s else {}
        if result.preference_applied:
            headers["Preference-Applied"] = result.preference_applied
        try:
            content = orjson.dumps(result.body)
        except TypeError:  # text that is not UTF-8 (lone surrogates) echoed back: escape it, never a 500
            content = orjson.dumps(printable_document(result.body))
        return Response(content, result.status, headers, media_type="application/json")

    async def _handle(request: Request) -> tuple[BatchAnswer, DeadLetter | None]:
        """The answer, and what to dead-letter when the whole request was refused."""
        runtime = holder["runtime"]
        credential = parse_bearer(request.headers.get("authorization"))
        # Until the register view caught up nobody can be authenticated; _gate answers 503 then.
        if runtime.view.ready.is_set() and not _authenticated(credential, runtime):
            return await _refuse_unauthenticated(request)
        try:
            body = await read_limited(request, settings.max_body_bytes)
        except BodyTooLarge as too_large:
            refused = request_error(Reason.PAYLOAD_TOO_LARGE, f"body over {settings.max_body_bytes} bytes")
            return refused, DeadLetter.excerpt(too_large.head)
        try:
            document, lenient = parse_body(body)
        except (ValueError, RecursionError) as problem:
            return request_error(Reason.MALFORMED, f"body is not JSON: {problem}"), DeadLetter.excerpt(body)
        readings = document.get("readings") if isinstance(document, dict) else None
        if not isinstance(readings, list) or not readings or set(document) != {"readings"}:
            return request_error(Reason.MALFORMED, 'body must be {"readings": [reading, ...]} with at least one '
                                 "reading and nothing else", "readings"), DeadLetter.excerpt(body)
        if len(readings) > settings.max_batch_readings:
            return request_error(Reason.BATCH_TOO_LARGE, f"{len(readings)} readings > "
                                 f"{settings.max_batch_readings} per batch", "readings"), DeadLetter.excerpt(body)
        minimal = prefers_minimal(request.headers.get("prefer"))
        return await _gate(credential, runtime, readings, lenient, minimal), None

    def _authenticated(credential: PresentedCredential | None, runtime: GateRuntime) -> bool:
        check = CredentialCheck(credential, datetime.now(UTC)) if credential is not None else None
        return authenticates(check, runtime.view.state)

    async def _refuse_unauthenticated(request: Request) -> tuple[BatchAnswer, DeadLetter | None]:
        """401 with one summary; 429 (nothing read, nothing stored) once the client address failed too often."""
        source = request.client.host if request.client is not None else "unknown"
        wait_s = failing_sources.try_acquire(source, time.monotonic())
        if wait_s > 0:
            metrics.REQUESTS_REFUSED.labels(Reason.RATE_LIMITED.value).inc()
            return source_limited(wait_s), None
        count, sensor_id = await _count_readings(request)
        metrics.READINGS.labels("http", "rejected", Reason.BAD_CREDENTIALS.value, "").inc(count or 0)
        # The count only, never the readings: anonymous traffic must not cost the city storage per reading.
        return unauthenticated(count), DeadLetter({"readings": count}, sensor_id, f" ({count} readings, not stored)")

    async def _count_readings(request: Request) -> tuple[int | None, str | None]:
        """How many readings an unauthenticated request carried (None: unreadable), and the one sensor id they all
        claim, if so: the owner of a sensor whose credential fails, and whoever watches an id being tried, see it."""
        try:
            document, _ = parse_body(await read_limited(request, settings.max_body_bytes))
        except (BodyTooLarge, ValueError, RecursionError):
            return None, None
        readings = document.get("readings") if isinstance(document, dict) else None
        if not isinstance(readings, list):
            return None, None
        # Only text can name a sensor: a list or object there (any JSON may come) is no claim, and is unhashable.
        claimed = {sensor if isinstance(raw, dict) and isinstance(sensor := raw.get("sensor_id"), str) else None
                   for raw in readings}
        sensor_id = claimed.pop() if len(claimed) == 1 else None
        named = isinstance(sensor_id, str) and SENSOR_ID.fullmatch(sensor_id) is not None
        return len(readings), sensor_id if named else None

    async def _gate(credential: PresentedCredential | None, runtime: GateRuntime, readings: list,
                    lenient: bool, minimal: bool) -> BatchAnswer:
        if not runtime.ready:  # Kafka known down: answer 503 at once rather than after the ack deadline
            return _unavailable("register view not caught up, or Kafka not reachable")
        metrics.BATCH_SIZE.labels("http").observe(len(readings))
        now = datetime.now(UTC)
        if runtime.shared_quota is None:  # one process: its own buckets, no database trip on the hot path
            outcomes = gate_batch(readings, credential, runtime.view.state, now, runtime.limits, runtime.limiter,
                                  lenient_json=lenient)
        else:
            try:
                outcomes = await gate_batch_leased(readings, credential, runtime.view.state, now, runtime.limits,
                                                   runtime.limiter, runtime.shared_quota.lease, lenient_json=lenient)
            except DependencyUnavailable as problem:  # no token can be leased: nothing is admitted unmetered
                return _unavailable(str(problem))
        produced_by = settings.produced_by  # a property: read once per batch, not per reading
        records = [admitted_record(outcome, produced_by) if isinstance(outcome, Admitted)
                   else rejected_record(outcome, raw, "http", now, produced_by)
                   for outcome, raw in zip(outcomes, readings)]
        try:
            await runtime.publisher.publish(records)
        except DependencyUnavailable as problem:
            return _unavailable(str(problem))
        metrics.count_outcomes("http", outcomes, runtime.view.state)
        return answer(outcomes, minimal=minimal)

    async def _dead_letter(refused: BatchAnswer, letter: DeadLetter) -> None:
        """A refused request is never silently dropped: one rejection (reason, detail, the body's first bytes as
        text, or a count) goes to the rejected topic. Best effort: the sender gets its 4xx whether Kafka answers."""
        body = refused.body
        metrics.REQUESTS_REFUSED.labels(body["reason"]).inc()
        runtime = holder["runtime"]
        if not runtime.ready:
            log.warning("refused request (%s) not dead-lettered: Kafka not ready", body["reason"])
            return
        rejection = Rejected(Reason(body["reason"]), f"whole request refused: {body['detail']}{letter.note}",
                             body.get("field"), letter.sensor_id)
        try:
            await runtime.publisher.publish([rejected_record(rejection, letter.payload, "http", datetime.now(UTC),
                                                             settings.produced_by)])
        except DependencyUnavailable:
            log.warning("refused request (%s) not dead-lettered: Kafka did not acknowledge", body["reason"])

    def _unavailable(detail: str) -> BatchAnswer:
        return BatchAnswer(503, settings.retry_after_s, {"reason": "UNAVAILABLE", "detail": detail})

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", response_class=Response, responses=READYZ_RESPONSES)
    async def readyz() -> Response:
        """The readiness contract (services/common/readiness.py): register view caught up, Kafka answering."""
        body, status = readiness(holder["runtime"].checks())
        return Response(orjson.dumps(body), status, media_type="application/json")

    @app.get("/metrics", response_class=Response, responses=METRICS_RESPONSES)
    async def prometheus() -> Response:
        payload, content_type = metrics_payload()
        return Response(payload, media_type=content_type)

    install_openapi(app)
    return app


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """The one rejection record of a request refused whole."""

    payload: Any
    sensor_id: str | None = None
    note: str = ""

    @classmethod
    def excerpt(cls, body: bytes) -> DeadLetter:
        """The body's first bytes as text (jsonb refuses NUL, so it is escaped)."""
        text = body[:EXCERPT_BYTES].decode("utf-8", errors="replace").replace("\x00", "\\u0000")
        return cls(text, None, f" (payload: its first {EXCERPT_BYTES} bytes at most)")

