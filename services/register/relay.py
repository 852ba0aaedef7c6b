"""Outbox relay: publishes committed register_outbox rows to `citystream.register.sensors.v1`, in order, then stamps them.

A crash after the commit leaves the row unpublished; the next pass (in this process or after a restart) sends it.
Sending twice is harmless: the topic is compacted and gates keep the highest version.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from aiokafka import AIOKafkaProducer

from schemas.headers import make_headers
from schemas.topics import REGISTER_SENSORS
from services.common import jsonwire
from services.register import records
from services.register import repository as repo
from services.register.metrics import OUTBOX_FAILURES, OUTBOX_PENDING, OUTBOX_PUBLISHED

log = logging.getLogger(__name__)
# One relay pass at a time across processes keeps per-sensor order on the topic.
RELAY_LOCK_ID = 7_346_100
BATCH = 500


class OutboxRelay:
    def __init__(self, pool: asyncpg.Pool, producer: AIOKafkaProducer, topic: str, produced_by: str,
                 poll_s: float = 0.5) -> None:
        self.pool, self.producer, self.topic, self.produced_by, self.poll_s = pool, producer, topic, produced_by, poll_s
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task | None = None

    def wake(self) -> None:
        """Called after a commit so the change goes out now rather than at the next poll."""
        self._wakeup.set()

    async def reconcile(self) -> int:
        """Start-up check: enqueue every sensor whose current version never reached the topic and has no pending row."""
        async with self.pool.acquire() as conn, conn.transaction():
            stale = await conn.fetch(
                "SELECT sensor_id FROM register_sensors s WHERE published_version < version AND NOT EXISTS"
                " (SELECT 1 FROM register_outbox o WHERE o.sensor_id = s.sensor_id AND o.published_at IS NULL"
                f"  AND o.version >= s.version) {repo.LOCK_IN_SENSOR_ORDER}")
            for item in stale:
                row = await repo.fetch_sensor(conn, item["sensor_id"])
                record = records.registration(row, await repo.sensor_credentials(conn, row["sensor_id"]))
                await repo.enqueue(conn, row["sensor_id"], row["version"], record.model_dump(mode="json",
                                                                                              exclude_none=True))
        if stale:
            log.warning("reconciliation re-enqueued %d sensor(s) missing from %s", len(stale), self.topic)
        return len(stale)

    async def publish_pending(self) -> int:
        """One pass: send pending rows in outbox order, wait for the broker's ack, then mark them. Returns the count."""
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", RELAY_LOCK_ID):
                return 0
            rows = await conn.fetch("SELECT outbox_id, sensor_id, version, payload FROM register_outbox"
                                    " WHERE published_at IS NULL ORDER BY outbox_id LIMIT $1", BATCH)
            OUTBOX_PENDING.set(len(rows))
            for row in rows:
                value = None if row["payload"] is None else jsonwire.dumps(row["payload"])
                headers = make_headers(REGISTER_SENSORS, self.produced_by, f"{row['sensor_id']}@{row['version']}")
                await self.producer.send_and_wait(self.topic, key=row["sensor_id"].encode(), value=value,
                                                  headers=headers)
            if rows:
                await conn.execute("UPDATE register_outbox SET published_at = now() WHERE outbox_id = ANY($1)",
                                   [row["outbox_id"] for row in rows])
                # Lock the rows in sensor order first, as every multi-sensor change does: an UPDATE ... FROM
                # locks them in join order, which deadlocked against a gateway credential being issued.
                sensor_ids = sorted({row["sensor_id"] for row in rows})
                await conn.execute(f"SELECT 1 FROM register_sensors WHERE sensor_id = ANY($1::text[])"
                                   f" {repo.LOCK_IN_SENSOR_ORDER}", sensor_ids)
                # One row per sensor: with several joined rows UPDATE ... FROM applies an arbitrary one of them.
                await conn.execute(
                    "UPDATE register_sensors s SET published_version = GREATEST(s.published_version, v.version)"
                    " FROM (SELECT sensor_id, max(version) AS version FROM unnest($1::text[], $2::int[])"
                    "       AS u(sensor_id, version) GROUP BY sensor_id) v WHERE s.sensor_id = v.sensor_id",
                    [row["sensor_id"] for row in rows], [row["version"] for row in rows])
                OUTBOX_PUBLISHED.inc(len(rows))
                log.info("published %d register change(s) to %s", len(rows), self.topic)
        return len(rows)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="outbox-relay")

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Let the pass in progress finish, then end `run`; cancel it only if that takes longer than `timeout_s`.

        Why not just cancel: a cancel that lands mid-query makes asyncpg cancel the statement on the server and wait,
        unbounded, for the acknowledgement (MagicStack/asyncpg#1356); a register shutdown once hung there for
        minutes. What a cut-short pass leaves unstamped is sent again by the next relay (sending twice is harmless)."""
        if self._task is None:
            return
        task, self._task = self._task, None
        self._stopping = True
        self._wakeup.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout_s)
        except TimeoutError:
            log.warning("outbox relay pass still running after %.1f s; cancelling it", timeout_s)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout_s)

    async def run(self) -> None:
        """Reconcile, then drain the outbox whenever woken (or every poll interval) until stopped or cancelled."""
        backoff_s = self.poll_s
        reconciled = False
        while not self._stopping:
            try:
                if not reconciled:
                    await self.reconcile()
                    reconciled = True
                while await self.publish_pending() == BATCH and not self._stopping:
                    pass
                backoff_s = self.poll_s
            except asyncio.CancelledError:
                raise
            except Exception:  # broker or database away: keep the rows, retry with backoff
                OUTBOX_FAILURES.inc()
                log.exception("outbox relay pass failed; retrying in %.1fs", backoff_s)
                backoff_s = min(backoff_s * 2, 30.0)
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=backoff_s)
            except TimeoutError:
                pass
            self._wakeup.clear()
