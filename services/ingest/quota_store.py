"""The shared per-sensor token buckets in PostgreSQL (table `ingest_rate_buckets`, migration 0800): one statement
leases tokens for every sensor a batch lacks them for, refilling and taking in SQL on the database's clock."""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg

from services.common.db import close_pool, create_pool
from services.common.errors import DependencyUnavailable
from services.ingest import metrics
from services.ingest.leases import Demand, Grants

log = logging.getLogger(__name__)

# One row per sensor: refilled at rate/60 per second since it was last touched (`ingest_rate_refilled`, on the
# database's clock, the same for every process and pod, so no process's clock can refill a bucket faster), capped at
# one minute's allowance; then as many whole tokens as wanted and held are taken. A sensor seen for the first time
# starts from a full minute. Rows are locked in sensor order, so two processes leasing overlapping sets of sensors
# cannot deadlock. `granted` keeps the last grant only so that RETURNING can say it.
LEASE_SQL = """
INSERT INTO ingest_rate_buckets AS b (sensor_id, rate_per_minute, tokens, updated_at, granted)
SELECT w.sensor_id, w.rate_per_minute, w.rate_per_minute - LEAST(w.wanted, w.rate_per_minute), now(),
       LEAST(w.wanted, w.rate_per_minute)
FROM unnest($1::text[], $2::integer[], $3::integer[]) AS w(sensor_id, rate_per_minute, wanted)
ORDER BY w.sensor_id
ON CONFLICT (sensor_id) DO UPDATE SET
    rate_per_minute = EXCLUDED.rate_per_minute,
    granted = LEAST(EXCLUDED.granted, floor(ingest_rate_refilled(b.tokens, b.updated_at, EXCLUDED.rate_per_minute))),
    tokens = ingest_rate_refilled(b.tokens, b.updated_at, EXCLUDED.rate_per_minute)
             - LEAST(EXCLUDED.granted, floor(ingest_rate_refilled(b.tokens, b.updated_at, EXCLUDED.rate_per_minute))),
    updated_at = GREATEST(b.updated_at, now())
RETURNING sensor_id, granted, tokens
"""
POOL_MAX_CONNECTIONS = 4  # one statement per batch that lacks tokens: a few connections serve a busy process


class SharedBuckets:
    """Leases from the shared buckets through a small pool, opened on first use (a process starts, and answers
    503 for want of tokens, while the database is down). Every failure to lease within `timeout_s` is
    DependencyUnavailable: the readings that needed tokens are never admitted unmetered."""

    def __init__(self, database_url: str, timeout_s: float) -> None:
        self.database_url = database_url
        self.timeout_s = timeout_s
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def lease(self, demand: Demand) -> Grants:
        sensor_ids = sorted(demand)
        started = time.perf_counter()
        try:
            pool = await self._pool_ready()
            async with pool.acquire(timeout=self.timeout_s) as connection:
                rows = await connection.fetch(LEASE_SQL, sensor_ids, [demand[s][0] for s in sensor_ids],
                                              [demand[s][1] for s in sensor_ids], timeout=self.timeout_s)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as problem:
            metrics.QUOTA_LEASES.labels("unavailable").inc()
            log.warning("rate-limit lease for %d sensors failed: %r", len(sensor_ids), problem)
            raise DependencyUnavailable(f"shared rate-limit store not reachable ({type(problem).__name__})") from None
        metrics.QUOTA_LEASES.labels("ok").inc()
        metrics.QUOTA_LEASE_LATENCY.observe(time.perf_counter() - started)
        return {row["sensor_id"]: (row["granted"], row["tokens"]) for row in rows}

    async def close(self) -> None:
        if self._pool is not None:
            await close_pool(self._pool, timeout_s=5.0)
            self._pool = None

    async def _pool_ready(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                # min_size 0: creating the pool connects nothing; each acquire connects within `timeout_s`.
                self._pool = await create_pool(self.database_url, min_size=0, max_size=POOL_MAX_CONNECTIONS)
            return self._pool
