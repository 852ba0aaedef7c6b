"""Retention against the real TimescaleDB: sensors of two retention periods (and rows of no registered sensor),
back-dated rows in readings, rejections and rollups_1m; exactly the expired rows go, whole chunks where possible."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest
from prometheus_client import REGISTRY

from services.common.roles import APP_ROLE, RETENTION_ROLE, with_role
from services.common.settings import CommonSettings
from services.register.app import create_app
from services.register.retention import AUDIT_ACTION, RETENTION_LOCK_ID, RetentionTask, retention_once
from tests.integration.register.conftest import free_port, register_settings_from

NOW = datetime.now(UTC).replace(microsecond=0)
SHORT, LONG, GHOST = "traffic-retain-short", "energy-retain-long", "waste-not-registered"
SHORT_DAYS, LONG_DAYS, UNREGISTERED_DAYS = 7, 90, 30


def ago(days: float, minutes: float = 0) -> datetime:
    return NOW - timedelta(days=days, minutes=minutes)


# (sensor, observed_at, expired?) — the `expired` column is the specification under test.
READINGS = [
    (SHORT, ago(1), False), (SHORT, ago(SHORT_DAYS, -1), False),  # one minute inside the 7 days: kept
    (SHORT, ago(SHORT_DAYS, 1), True), (SHORT, ago(30), True), (SHORT, ago(200), True),
    (LONG, ago(1), False), (LONG, ago(30), False), (LONG, ago(89), False),
    (LONG, ago(LONG_DAYS, 1), True), (LONG, ago(200), True),
    (GHOST, ago(10), False), (GHOST, ago(UNREGISTERED_DAYS, 1), True), (GHOST, ago(200), True),
]
REJECTIONS = [
    (SHORT, ago(3), False), (SHORT, ago(8), True), (LONG, ago(60), False), (LONG, ago(140), True),
    (None, ago(5), False), (None, ago(40), True), (GHOST, ago(20), False), (GHOST, ago(45), True),
]
ROLLUPS = [
    (SHORT, ago(2), False), (SHORT, ago(10), True), (LONG, ago(60), False), (LONG, ago(120), True),
]


async def _seed(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for sensor_id, domain, days in ((SHORT, "traffic", SHORT_DAYS), (LONG, "energy", LONG_DAYS)):
            await conn.execute(
                "INSERT INTO register_sensors (sensor_id, version, status, domain, owner_organisation,"
                " owner_contact_name, owner_contact_email, metrics, location, purpose, legal_ground, personal_data,"
                " retention_days, reporting_interval_s, rate_limit_per_minute) VALUES ($1, 1, 'active', $2,"
                " 'Gemeente Test', 'Team', 'team@example.org', '[]', '{\"type\": \"Point\", \"coordinates\": [4.9,"
                " 52.37]}', 'test', 'public_task', false, $3, 60, 120)", sensor_id, domain, days)
        await conn.executemany(
            "INSERT INTO readings (observed_at, sensor_id, seq, domain, received_at, register_version, metrics)"
            " VALUES ($1, $2, $3, 'traffic', $1, 1, '{\"intensity\": 1}')",
            [(at, sensor_id, seq) for seq, (sensor_id, at, _) in enumerate(READINGS)])
        await conn.executemany(
            "INSERT INTO rejections (received_at, event_id, sensor_id, seq, reason, detail, source)"
            " VALUES ($1, $2, $3, $4, 'OUT_OF_RANGE', 'test', 'http')",
            [(at, uuid.uuid4(), sensor_id, seq) for seq, (sensor_id, at, _) in enumerate(REJECTIONS)])
        await conn.executemany(
            "INSERT INTO rollups_1m (window_start, sensor_id, metric, domain, count, min, max, mean, last)"
            " VALUES ($1, $2, 'intensity', 'traffic', 1, 1, 1, 1, 1)",
            [(at, sensor_id) for sensor_id, at, _ in ROLLUPS])
    finally:
        await conn.close()


async def _remaining(url: str) -> dict[str, set]:
    conn = await asyncpg.connect(url)
    try:
        return {
            "readings": {(r[0], r[1]) for r in await conn.fetch("SELECT sensor_id, observed_at FROM readings")},
            "rejections": {(r[0], r[1]) for r in await conn.fetch("SELECT sensor_id, received_at FROM rejections")},
            "rollups_1m": {(r[0], r[1]) for r in await conn.fetch("SELECT sensor_id, window_start FROM rollups_1m")},
        }
    finally:
        await conn.close()


def _kept(rows) -> set:
    return {(sensor_id, at) for sensor_id, at, expired in rows if not expired}


def _kept_at(rows, now: datetime) -> set:
    """The rows a pass at `now` keeps: each sensor's declared days, the unregistered default for the others."""
    days = {SHORT: SHORT_DAYS, LONG: LONG_DAYS}
    return {(sensor_id, at) for sensor_id, at, _ in rows
            if at > now - timedelta(days=days.get(sensor_id, UNREGISTERED_DAYS))}


def _expired_count(rows) -> int:
    return sum(expired for _, _, expired in rows)


async def _chunk_ranges(url: str, table: str) -> list[tuple[datetime, datetime]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT range_start, range_end FROM timescaledb_information.chunks"
                                " WHERE hypertable_name = $1 ORDER BY range_start", table)
        return [(row[0], row[1]) for row in rows]
    finally:
        await conn.close()


def _value(name: str, labels: dict) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _in_chunks(rows, chunks: list[tuple[datetime, datetime]]) -> int:
    return sum(1 for _, at, _ in rows if any(start <= at < end for start, end in chunks))


async def test_exactly_the_expired_rows_go(fresh_database_url: str) -> None:
    await _seed(fresh_database_url)
    drop_before = ago(LONG_DAYS)  # the longest declared retention bounds what whole chunks may go
    expected_chunks = {table: [r for r in await _chunk_ranges(fresh_database_url, table) if r[1] <= drop_before]
                       for table in ("readings", "rejections", "rollups_1m")}
    assert expected_chunks["readings"], "the back-dated readings must fill at least one droppable chunk"
    rows_before = _value("citystream_retention_rows_deleted_total", {"table": "readings", "how": "row_delete"})
    chunks_before = _value("citystream_retention_chunks_dropped_total", {"table": "readings"})

    report = await retention_once(with_role(fresh_database_url, RETENTION_ROLE), UNREGISTERED_DAYS, NOW)

    assert report is not None
    remaining = await _remaining(fresh_database_url)
    assert remaining["readings"] == _kept(READINGS)
    assert remaining["rejections"] == _kept(REJECTIONS)
    assert remaining["rollups_1m"] == _kept(ROLLUPS)
    for table, rows in (("readings", READINGS), ("rejections", REJECTIONS), ("rollups_1m", ROLLUPS)):
        outcome = report.tables[table]
        assert outcome.total_rows == _expired_count(rows), table
        assert outcome.chunks_dropped == len(expected_chunks[table]), table
        assert [r for r in await _chunk_ranges(fresh_database_url, table) if r[1] <= drop_before] == [], table
    # readings: the 200-day-old rows of all three sensors sit in a chunk past every retention (dropped whole);
    # the other expired rows share chunks with kept ones (deleted row by row).
    readings = report.tables["readings"]
    in_chunks = _in_chunks(READINGS, expected_chunks["readings"])
    assert in_chunks >= 3 and readings.rows_in_dropped_chunks == in_chunks
    assert readings.rows_deleted + readings.unregistered_rows_deleted == _expired_count(READINGS) - in_chunks
    assert readings.unregistered_rows_deleted == 1  # GHOST's 30-day-and-a-minute-old reading
    assert report.tables["rejections"].unregistered_rows_deleted == 2  # no sensor id, and an unknown one
    assert report.sensors == 2

    # Recorded: one append-only audit row with the figures, and the Prometheus counters.
    conn = await asyncpg.connect(fresh_database_url)
    try:
        audit = await conn.fetch("SELECT actor, action, sensor_id, after FROM register_audit_log WHERE action = $1",
                                 AUDIT_ACTION)
    finally:
        await conn.close()
    assert len(audit) == 1 and audit[0]["sensor_id"] is None
    after = orjson.loads(audit[0]["after"])
    assert after["tables"]["readings"]["total_rows"] == _expired_count(READINGS)
    assert after["tables"]["readings"]["chunks_dropped"] == len(expected_chunks["readings"])
    assert after["duration_s"] >= 0
    assert _value("citystream_retention_rows_deleted_total",
                  {"table": "readings", "how": "row_delete"}) - rows_before == _expired_count(READINGS) - in_chunks
    assert _value("citystream_retention_chunks_dropped_total",
                  {"table": "readings"}) - chunks_before == len(expected_chunks["readings"])

    # A second run finds nothing more to delete.
    again = await retention_once(with_role(fresh_database_url, RETENTION_ROLE), UNREGISTERED_DAYS, NOW)
    assert again is not None and all(outcome.total_rows == 0 for outcome in again.tables.values())
    assert await _remaining(fresh_database_url) == remaining


async def test_a_second_process_skips_while_a_run_holds_the_lock(fresh_database_url: str) -> None:
    holder = await asyncpg.connect(fresh_database_url)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", RETENTION_LOCK_ID)
        assert await retention_once(with_role(fresh_database_url, RETENTION_ROLE), UNREGISTERED_DAYS, NOW) is None
    finally:
        await holder.close()
    assert await retention_once(with_role(fresh_database_url, RETENTION_ROLE), UNREGISTERED_DAYS, NOW) is not None


async def test_the_sink_role_may_not_delete_or_drop(fresh_database_url: str) -> None:
    """Least privilege: the application role (the sink) stays append-only on the time-series tables."""
    conn = await asyncpg.connect(with_role(fresh_database_url, APP_ROLE))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM readings")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT retention_drop_chunks('readings', now())")
    finally:
        await conn.close()


async def test_the_register_runs_retention_on_its_own(fresh_database_url: str, settings: CommonSettings) -> None:
    """The service task: with an interval set, the register runs a pass (as the retention role) by itself."""
    await _seed(fresh_database_url)
    register_settings = register_settings_from(
        settings, database_url=with_role(fresh_database_url, APP_ROLE), register_retention_interval_s=3600,
        register_retention_initial_delay_s=0, retention_unregistered_days=UNREGISTERED_DAYS,
        register_retention_database_url=with_role(fresh_database_url, RETENTION_ROLE))
    app = create_app(register_settings)
    conn = await asyncpg.connect(fresh_database_url)
    try:
        started = datetime.now(UTC)
        async with app.router.lifespan_context(app), asyncio.timeout(20):
            while not await conn.fetchval("SELECT count(*) FROM register_audit_log WHERE action = $1", AUDIT_ACTION):
                await asyncio.sleep(0.1)
        # The task runs on the real clock, minutes after NOW in a long test session: judge by the time of the
        # pass (the boundary rows one minute either side of a cutoff are pinned by the fixed-clock test above).
        remaining = (await _remaining(fresh_database_url))["readings"]
        assert _kept_at(READINGS, datetime.now(UTC)) <= remaining <= _kept_at(READINGS, started)
        assert len(remaining) < len(READINGS)
    finally:
        await conn.close()


async def test_a_failed_pass_is_counted_and_the_task_keeps_going() -> None:
    """Nothing listens on the DSN's port: each pass fails at connect, is counted, and the next one still runs."""
    labels = {"outcome": "failed"}
    before = _value("citystream_retention_runs_total", labels)
    task = RetentionTask(f"postgresql://nobody:nothing@127.0.0.1:{free_port()}/none", interval_s=0.05,
                         initial_delay_s=0, unregistered_days=UNREGISTERED_DAYS, clock=lambda: NOW)
    task.start()
    try:
        async with asyncio.timeout(20):
            while _value("citystream_retention_runs_total", labels) - before < 3:
                await asyncio.sleep(0.05)
    finally:
        await task.stop()
