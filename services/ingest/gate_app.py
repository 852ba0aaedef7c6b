"""The Kafka-native gate: a Faust agent admitting `citystream.readings.raw.v1` into the readings topics.

The credential travels in the `credential` header, the sensor id in the key (and optionally the value). Each record
passes the same `admit` as the HTTP path; admitted ones go to `citystream.readings.<domain>.v1`, refused or
unreadable ones to `citystream.readings.rejected.v1`, and the agent carries on.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from datetime import UTC, datetime

import faust
import orjson

from schemas import headers as wire_headers
from schemas.rejections import RejectionReason
from schemas.topics import RAW_READINGS
from services.ingest import metrics
from services.ingest.credentials import CredentialChecks
from services.ingest.gate import Admitted, Rejected, admit
from services.ingest.records import OutRecord, admitted_record, rejected_record
from services.ingest.runtime import GateRuntime
from services.ingest.settings import IngestSettings

log = logging.getLogger(__name__)
TAKE_MAX, TAKE_WITHIN_S = 1000, 0.2


def gate_event(runtime: GateRuntime, key: bytes | None, value: bytes | None, header_pairs,
               now: datetime, credentials: CredentialChecks | None = None) -> tuple[OutRecord, tuple[str, str, str]]:
    """One raw record → the record to produce (admitted reading or rejection) and its metric labels
    (outcome, reason, domain). Never raises on bad input. `credentials` (one per batch, same `now`) remembers the
    check of each credential text already seen in the batch."""
    produced_by = runtime.settings.produced_by
    hint = key.decode("utf-8", errors="replace") if key else None
    try:
        raw = orjson.loads(value) if value is not None else None
    except orjson.JSONDecodeError:
        try:
            raw = json.loads(value)  # NaN / Infinity: refused by the gate as OUT_OF_RANGE, not as MALFORMED
        except (ValueError, RecursionError) as problem:
            rejection = Rejected(RejectionReason.MALFORMED, f"value is not JSON: {problem}", None, hint)
            return rejected_record(rejection, value, "kafka", now, produced_by), ("rejected", "MALFORMED", "")
    credentials = credentials if credentials is not None else CredentialChecks(now)
    credential = credentials.of(wire_headers.header_value(header_pairs, wire_headers.CREDENTIAL))
    outcome = admit(raw, credential, runtime.view.state, now, runtime.limits, runtime.limiter, sensor_hint=hint)
    labels = metrics.outcome_labels(outcome, runtime.view.state)
    if isinstance(outcome, Admitted):
        return admitted_record(outcome, produced_by), labels
    return rejected_record(outcome, raw, "kafka", now, produced_by), labels


def build_app(settings: IngestSettings) -> faust.App:
    """The Faust app (`app`) with its agent `admit_raw_readings`; the entrypoint builds it once from settings."""
    app = faust.App(settings.gate_app_id, broker=f"kafka://{settings.kafka_bootstrap}", value_serializer="raw",
                    key_serializer="raw", web_port=settings.gate_port, datadir=settings.gate_data_dir,
                    topic_disable_leader=True, autodiscover=False, web_enabled=True, producer_acks=-1)
    # aiokafka clients need the running loop, so the runtime is built by the app's start-up task.
    holder: dict[str, GateRuntime] = {}
    built = asyncio.Event()
    raw_topic = app.topic(settings.topic(RAW_READINGS), value_serializer="raw", key_serializer="raw")

    @app.task
    async def start_gate_runtime() -> None:
        runtime = holder["runtime"] = GateRuntime.build(settings, "kafka")
        built.set()
        runtime.start()
        try:
            await runtime.wait_ready(timeout_s=600)
            log.info("gate ready: %d sensors in the register view", len(runtime.view.state))
            await asyncio.Event().wait()  # hold the runtime until the worker cancels this task at shutdown
        finally:
            await runtime.stop()

    @app.agent(raw_topic)
    async def admit_raw_readings(stream):
        async for events in stream.take_events(TAKE_MAX, within=TAKE_WITHIN_S):
            await built.wait()
            runtime = holder["runtime"]
            await runtime.wait_ready(timeout_s=600)
            now = datetime.now(UTC)
            out, tally, credentials = [], Counter(), CredentialChecks(now)
            for event in events:
                try:
                    record, labels = gate_event(runtime, event.key, event.value, _header_pairs(event), now,
                                                credentials)
                except Exception as problem:  # a bug must not stop the stream: dead-letter with context
                    where = f"{event.message.topic}[{event.message.partition}]@{event.message.offset}"
                    log.exception("gate failed on %s", where)
                    rejection = Rejected(RejectionReason.MALFORMED, f"gate error on {where}: {problem!r}")
                    record = rejected_record(rejection, event.value, "kafka", now, settings.produced_by)
                    labels = ("rejected", "MALFORMED", "")
                out.append(record)
                tally[labels] += 1
            metrics.BATCH_SIZE.labels("kafka").observe(len(events))
            # Retried until acknowledged: the offsets of these events are committed only after this returns.
            await _publish_until_acked(runtime, out)
            for (outcome, reason, domain), count in tally.items():
                metrics.READINGS.labels("kafka", outcome, reason, domain).inc(count)

    @app.page("/readyz")
    async def readyz(web, request):
        runtime = holder.get("runtime")
        ready = runtime is not None and runtime.ready
        return web.json({"ready": ready, "sensors": len(runtime.view.state) if runtime else 0},
                        status=200 if ready else 503)

    @app.page("/healthz")
    async def healthz(web, request):
        return web.json({"status": "ok"})

    @app.page("/metrics")
    async def prometheus(web, request):
        from services.common.metrics import metrics_payload

        payload, content_type = metrics_payload()
        return web.bytes(payload, content_type=content_type.split(";")[0])

    return app


def _header_pairs(event) -> list[tuple[str, bytes]]:
    found = event.message.headers or []
    items = found.items() if isinstance(found, dict) else found
    return [(name, value) for name, value in items]


async def _publish_until_acked(runtime: GateRuntime, out: list[OutRecord]) -> None:
    backoff_s = 0.5
    while True:
        try:
            await runtime.publisher.publish(out)
            return
        except Exception as problem:
            log.warning("gate output not acknowledged (%r); retrying in %.1f s", problem, backoff_s)
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, 10.0)
