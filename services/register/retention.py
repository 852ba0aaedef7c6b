"""Retention run: deletes rows of readings, rejections and rollups_1m past their sensor's declared retention_days
(read from register_sensors), drops whole chunks past every sensor's, and records the run in register_audit_log
and the Prometheus metrics. One run at a time across processes (advisory lock)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import asyncpg

from services.common.db import connect
from services.register import metrics
from services.register import repository as repo
from services.register.retention_plan import (
    RETAINED_TABLES,
    Chunk,
    RetainedTable,
    RetentionPlan,
    droppable_chunks,
    plan_retention,
)

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same for every process that runs retention on this database.
RETENTION_LOCK_ID = 7_346_217
AUDIT_ACTOR = "system:retention"
AUDIT_ACTION = "retention:run"


@dataclass
class TableOutcome:
    rows_deleted: int = 0  # row deletes of registered sensors, past each one's own cutoff
    unregistered_rows_deleted: int = 0  # row deletes of sensor ids the register does not know (or null)
    chunks_dropped: int = 0
    rows_in_dropped_chunks: int = 0  # counted under lock just before the drop

    @property
    def total_rows(self) -> int:
        return self.rows_deleted + self.unregistered_rows_deleted + self.rows_in_dropped_chunks


@dataclass
class RetentionReport:
    started_at: datetime
    sensors: int
    drop_before: datetime
    duration_s: float = 0.0
    tables: dict[str, TableOutcome] = field(default_factory=dict)

    def as_json(self) -> dict:
        return {"started_at": self.started_at.isoformat(), "duration_s": round(self.duration_s, 3),
                "sensors": self.sensors, "drop_before": self.drop_before.isoformat(),
                "tables": {name: asdict(outcome) | {"total_rows": outcome.total_rows}
                           for name, outcome in self.tables.items()}}


async def run_retention(conn: asyncpg.Connection, now: datetime, unregistered_days: int) -> RetentionReport | None:
    """One retention pass on `conn`; None when another process holds the retention lock (nothing done)."""
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", RETENTION_LOCK_ID):
        log.info("retention skipped: another run holds the lock")
        metrics.RETENTION_RUNS.labels("skipped").inc()
        return None
    started = time.monotonic()
    try:
        rows = await conn.fetch("SELECT sensor_id, retention_days FROM register_sensors")
        plan = plan_retention({row["sensor_id"]: row["retention_days"] for row in rows}, now, unregistered_days)
        report = RetentionReport(now, len(plan.sensor_ids), plan.drop_before)
        for table in RETAINED_TABLES:
            outcome = report.tables[table.name] = TableOutcome()
            await _drop_expired_chunks(conn, table, plan, outcome)
            await _delete_expired_rows(conn, table, plan, outcome)
        report.duration_s = time.monotonic() - started
        await repo.append_audit(conn, actor=AUDIT_ACTOR, action=AUDIT_ACTION, sensor_id=None, before=None,
                                after=report.as_json(), at=now)
    finally:
        if not conn.is_closed():  # a lost connection released the lock with its session; keep the first error
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await conn.execute("SELECT pg_advisory_unlock($1)", RETENTION_LOCK_ID)
    _observe(report)
    return report


async def _drop_expired_chunks(conn: asyncpg.Connection, table: RetainedTable, plan: RetentionPlan,
                               outcome: TableOutcome) -> None:
    chunks = droppable_chunks(await _chunks(conn, table), plan.drop_before)
    if not chunks:
        return
    older_than = chunks[-1].range_end  # exactly the chunks listed: drop_chunks drops those ending at or before it
    async with conn.transaction():
        for chunk in chunks:  # no insert may slip in between the count and the drop
            await conn.execute(f"LOCK TABLE {chunk.name} IN EXCLUSIVE MODE")
        outcome.rows_in_dropped_chunks = await conn.fetchval(
            f"SELECT count(*) FROM {table.name} WHERE {table.time_column} < $1", older_than)
        dropped = await conn.fetch("SELECT retention_drop_chunks($1, $2)", table.name, older_than)
        outcome.chunks_dropped = len(dropped)
    log.info("retention: dropped %d chunk(s) of %s ending at or before %s (%d rows)", outcome.chunks_dropped,
             table.name, older_than.isoformat(), outcome.rows_in_dropped_chunks)


async def _chunks(conn: asyncpg.Connection, table: RetainedTable) -> list[Chunk]:
    rows = await conn.fetch(
        "SELECT format('%I.%I', chunk_schema, chunk_name) AS name, range_start, range_end"
        " FROM timescaledb_information.chunks WHERE hypertable_schema = current_schema() AND hypertable_name = $1",
        table.name)
    return [Chunk(row["name"], row["range_start"], row["range_end"]) for row in rows]


async def _delete_expired_rows(conn: asyncpg.Connection, table: RetainedTable, plan: RetentionPlan,
                               outcome: TableOutcome) -> None:
    """Rows in chunks that also hold unexpired rows. The constant bound `delete_before` lets TimescaleDB skip the
    chunks where nothing can have expired yet; the (sensor_id, time) indexes find each sensor's old rows."""
    time_column = table.time_column
    if plan.sensor_ids:
        outcome.rows_deleted = await conn.fetchval(
            f"WITH expired AS (DELETE FROM {table.name} AS r"
            f" USING unnest($1::text[], $2::timestamptz[]) AS c(sensor_id, cutoff)"
            f" WHERE r.sensor_id = c.sensor_id AND r.{time_column} < c.cutoff AND r.{time_column} < $3"
            f" RETURNING 1) SELECT count(*) FROM expired",
            list(plan.sensor_ids), list(plan.cutoffs), plan.delete_before)
    outcome.unregistered_rows_deleted = await conn.fetchval(
        f"WITH expired AS (DELETE FROM {table.name} AS r WHERE r.{time_column} < $2"
        f" AND (r.sensor_id IS NULL OR NOT (r.sensor_id = ANY($1::text[]))) RETURNING 1)"
        f" SELECT count(*) FROM expired",
        list(plan.sensor_ids), plan.unregistered_cutoff)


def _observe(report: RetentionReport) -> None:
    metrics.RETENTION_RUNS.labels("ok").inc()
    metrics.RETENTION_DURATION.set(report.duration_s)
    metrics.RETENTION_LAST_SUCCESS.set(time.time())
    for name, outcome in report.tables.items():
        metrics.RETENTION_ROWS.labels(name, "row_delete").inc(outcome.rows_deleted + outcome.unregistered_rows_deleted)
        metrics.RETENTION_ROWS.labels(name, "chunk_drop").inc(outcome.rows_in_dropped_chunks)
        metrics.RETENTION_CHUNKS.labels(name).inc(outcome.chunks_dropped)
    log.info("retention run: %s", report.as_json())


async def retention_once(dsn: str, unregistered_days: int, now: datetime | None = None) -> RetentionReport | None:
    """Connect, run once, disconnect (the `citystream retention run` command and each pass of the task)."""
    try:
        # No statement timeout: the first run on a large backlog deletes for as long as it takes.
        conn = await connect(dsn, command_timeout=None)
        try:
            return await run_retention(conn, now or datetime.now(UTC), unregistered_days)
        finally:
            await conn.close()
    except BaseException:  # database unreachable, a statement failed, or cancelled mid-run
        metrics.RETENTION_RUNS.labels("failed").inc()
        raise


class RetentionTask:
    """The register's periodic retention: first pass after `initial_delay_s`, then every `interval_s`. A failed
    pass is logged and counted, and the next one tries again."""

    def __init__(self, dsn: str, interval_s: float, initial_delay_s: float, unregistered_days: int,
                 clock: Callable[[], datetime]) -> None:
        self.dsn, self.interval_s, self.initial_delay_s = dsn, interval_s, initial_delay_s
        self.unregistered_days, self.clock = unregistered_days, clock
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        await asyncio.sleep(self.initial_delay_s)
        while True:
            try:
                await retention_once(self.dsn, self.unregistered_days, self.clock())
            except Exception:  # whatever failed (database down, a bad row), the next pass tries again
                log.exception("retention pass failed, next try in %.0f s", self.interval_s)
            await asyncio.sleep(self.interval_s)
