"""Readiness of the API's dependencies: Kafka reachable (a cached metadata request), the database answering."""

from __future__ import annotations

import asyncio
import logging
import time

from services.common.kafka import broker_answers

log = logging.getLogger(__name__)


class KafkaProbe:
    """At most one metadata request per `ttl_s`, answered within `timeout_s`, so /readyz stays cheap and quick
    however often an orchestrator polls it, yet turns false within seconds of the broker going away."""

    def __init__(self, ttl_s: float = 2.0, timeout_s: float = 1.0) -> None:
        self.ttl_s, self.timeout_s = ttl_s, timeout_s
        self._checked_at: float | None = None
        self._reachable = False
        self._lock = asyncio.Lock()

    async def reachable(self, producer, topic: str) -> bool:
        """Whether a broker answers a metadata request for `topic` (one the API writes)."""
        if producer is None:  # never connected yet: the lifespan keeps trying
            return False
        async with self._lock:
            now = time.monotonic()
            if self._checked_at is not None and now - self._checked_at < self.ttl_s:
                return self._reachable
            try:
                async with asyncio.timeout(self.timeout_s):
                    await broker_answers(producer.client, topic)
                self._reachable = True
            except Exception as problem:  # noqa: BLE001 - any failure means "not reachable"
                if self._reachable or self._checked_at is None:
                    log.warning("Kafka not reachable: %r", problem)
                self._reachable = False
            self._checked_at = time.monotonic()
            return self._reachable


async def database_answers(pool, timeout_s: float = 2.0) -> bool:
    if pool is None:
        return False
    try:
        async with asyncio.timeout(timeout_s):
            async with pool.acquire() as connection:
                return await connection.fetchval("SELECT 1") == 1
    except Exception:  # noqa: BLE001 - any failure means "not ready"; the reason is in the database's log
        return False
