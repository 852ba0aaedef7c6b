"""The one /readyz contract of every CityStream service, and the one way a service asks whether Kafka answers.

Body: `{"status": "ready" | "not_ready", "checks": {"<name>": {"ok": <bool>, "detail": "<short code or fact>"}}}`,
HTTP 200 when every check is ok, else 503. A detail is a short reason code (`timeout`, `unreachable`,
`not_connected`, `catching_up`, ...) or a count, never exception text: the register's /readyz is public.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.common.kafka import broker_answers

log = logging.getLogger(__name__)

READY, NOT_READY = 200, 503


class CheckResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ok: bool
    detail: str = Field(default="", description="Short reason code or fact, e.g. `answering`, `timeout`, "
                        "`catching_up`, `1234 sensors`. Never exception text.")


class Readiness(BaseModel):
    """What /readyz answers, with 200 (`ready`) or 503 (`not_ready`)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "status": "ready", "checks": {"database": {"ok": True, "detail": "answering"},
                                      "kafka": {"ok": True, "detail": "answering"}}}]})

    status: Literal["ready", "not_ready"]
    checks: dict[str, CheckResult]

    @classmethod
    def of(cls, checks: dict[str, CheckResult]) -> Readiness:
        return cls(status="ready" if all(c.ok for c in checks.values()) else "not_ready", checks=checks)

    @property
    def http_status(self) -> int:
        return READY if self.status == "ready" else NOT_READY


def check(ok: bool, detail_if_ok: str = "ok", detail_if_not: str = "not_ready") -> CheckResult:
    return CheckResult(ok=ok, detail=detail_if_ok if ok else detail_if_not)


def readiness(checks: dict[str, CheckResult]) -> tuple[dict, int]:
    """(JSON body, HTTP status) of the contract, for services that answer without FastAPI (Faust's web pages)."""
    answer = Readiness.of(checks)
    return answer.model_dump(), answer.http_status


class KafkaReachability:
    """Whether a broker answers a metadata request for `topic` (one the service uses): at most one request per
    `ttl_s`, each bounded by `timeout_s`, shared by concurrent callers. /readyz stays cheap however often an
    orchestrator polls it, yet turns false within `ttl_s + timeout_s` of the broker going away. A process whose hot
    path needs the answer without waiting (ingest refuses at once while Kafka is down) runs `watch()` and reads
    `last`."""

    def __init__(self, topic: str, ttl_s: float = 1.0, timeout_s: float = 1.5) -> None:
        self.topic, self.ttl_s, self.timeout_s = topic, ttl_s, timeout_s
        self.last = CheckResult(ok=False, detail="not_checked")
        self._checked_at: float | None = None
        self._lock = asyncio.Lock()

    async def check(self, client) -> CheckResult:
        """The cached answer, refreshed when older than `ttl_s`. `client` is an aiokafka client (a producer's
        `.client`), or None while the service has not connected yet."""
        if client is None:
            return CheckResult(ok=False, detail="not_connected")
        async with self._lock:
            if self._checked_at is not None and time.monotonic() - self._checked_at < self.ttl_s:
                return self.last
            self._record(await self._ask(client))
            return self.last

    async def watch(self, client_source: Callable[[], object | None]) -> None:
        """Keep `last` current every `ttl_s` until cancelled (`client_source` gives the client in use now)."""
        while True:
            await self.check(client_source())
            await asyncio.sleep(self.ttl_s)

    async def _ask(self, client) -> CheckResult:
        try:
            await asyncio.wait_for(broker_answers(client, self.topic), self.timeout_s)
        except TimeoutError:
            return CheckResult(ok=False, detail="timeout")
        except Exception as problem:  # noqa: BLE001 - connection refused, KafkaError...: all mean "unreachable"
            log.debug("metadata request for %s failed: %r", self.topic, problem)
            return CheckResult(ok=False, detail="unreachable")
        return CheckResult(ok=True, detail="answering")

    def _record(self, result: CheckResult) -> None:
        if result.ok != self.last.ok and self._checked_at is not None:
            log.warning("kafka %s", "answering again" if result.ok else f"not answering ({result.detail})")
        self.last, self._checked_at = result, time.monotonic()


async def database_check(pool, timeout_s: float = 2.0) -> CheckResult:
    """Whether the database answers `SELECT 1` on a pooled connection within `timeout_s` (None: no pool yet)."""
    if pool is None:
        return CheckResult(ok=False, detail="not_connected")
    try:
        async with asyncio.timeout(timeout_s):
            async with pool.acquire() as connection:
                await connection.fetchval("SELECT 1")
    except TimeoutError:
        return CheckResult(ok=False, detail="timeout")
    except Exception as problem:  # noqa: BLE001 - any failure means "not ready"; the reason is logged, not shown
        log.debug("database readiness probe failed: %r", problem)
        return CheckResult(ok=False, detail="unavailable")
    return CheckResult(ok=True, detail="answering")
