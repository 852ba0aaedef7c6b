"""`citystream replay --sensor --from --to` against a migrated TimescaleDB: the sensor's stored readings are judged
with its register profile (declared range and interval) and the worker's silence ticks, deterministically."""

from __future__ import annotations

import asyncio
import csv
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
from typer.testing import CliRunner

from services.anomaly import cli

T0 = datetime(2026, 1, 12, 8, 0, tzinfo=UTC)


async def store(database_url: str, sensor: str, interval_s: float | None) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        rows = []
        for i in range(80):  # readings resume for 25 min: auto-resolve needs 10 min of normal
            if 45 <= i < 55:  # ten minutes without a reading
                continue
            voltage = 612.0 if i == 30 else 230.0 + (i % 3)
            rows.append((T0 + timedelta(seconds=60 * i), sensor, i, "energy", T0, 1,
                         orjson.dumps({"activePower": 20.0 + (i % 5) * 0.3, "voltage": voltage}).decode()))
        await connection.executemany("INSERT INTO readings (observed_at, sensor_id, seq, domain, received_at,"
                                     " register_version, metrics) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)", rows)
        if interval_s is not None:  # a valid row: the register's own tests list this shared database
            declared = [{"name": "voltage", "unit": "V", "min": 0, "max": 400},
                        {"name": "activePower", "unit": "kW", "min": 0, "max": 500}]
            await connection.execute(
                "INSERT INTO register_sensors (sensor_id, version, status, domain, owner_organisation,"
                " owner_contact_name, owner_contact_email, metrics, location, purpose, legal_ground, personal_data,"
                " retention_days, reporting_interval_s, rate_limit_per_minute) VALUES ($1, 1, 'active', 'energy',"
                " 'Gemeente Test', 'Test', 'test@example.org', $2::jsonb,"
                " '{\"type\": \"Point\", \"coordinates\": [4.9, 52.37]}'::jsonb, 'Replay test', 'public_task', false, 30,"
                " $3, 60)", sensor, orjson.dumps(declared).decode(), interval_s)
    finally:
        await connection.close()


def replay(tmp_path, database_url: str, sensor: str, name: str):
    scores, alerts = tmp_path / f"{name}.csv", tmp_path / f"{name}.jsonl"
    result = CliRunner().invoke(cli.app, [
        "replay", "--sensor", sensor, "--from", T0.isoformat(), "--to", (T0 + timedelta(hours=2)).isoformat(),
        "--database-url", database_url, "--scores", str(scores), "--alerts", str(alerts)])
    assert result.exit_code == 0, result.output
    with scores.open() as handle:
        rows = list(csv.DictReader(handle))
    return rows, [orjson.loads(line) for line in alerts.read_bytes().splitlines()], scores, alerts


def test_replay_of_a_time_range_uses_the_register_profile_and_ticks(database_url, tmp_path):
    sensor = f"meter-replay-{uuid.uuid4().hex[:6]}"
    asyncio.run(store(database_url, sensor, interval_s=120.0))  # declared: twice the actual 60 s
    rows, events, scores, alerts = replay(tmp_path, database_url, sensor, "a")
    again = replay(tmp_path, database_url, sensor, "b")
    assert scores.read_bytes() == again[2].read_bytes() and alerts.read_bytes() == again[3].read_bytes()
    assert {int(r["seq"]) for r in rows} == set(range(45)) | set(range(55, 80)), "every stored reading judged"
    kinds = [(e["kind"], e["event_type"]) for e in events]
    out_of_range = [e for e in events if e["kind"] == "out_of_range" and e["event_type"] == "opened"]
    assert len(out_of_range) == 1 and out_of_range[0]["explanation"]["expected"] == 400.0, "declared range used"
    silences = [e for e in events if e["kind"] == "silence"]
    assert [e["event_type"] for e in silences][:2] == ["opened", "resolved"], kinds
    opened_at = datetime.fromisoformat(silences[0]["occurred_at"])
    assert T0 + timedelta(minutes=44 + 6) <= opened_at < T0 + timedelta(minutes=55), "a tick inside the gap"
    assert silences[0]["explanation"]["expected"] == 120.0, "the declared interval, not the learned 60 s"
    # After the last reading (minute 79) the range runs on to 2 h: the timer finds the sensor silent again.
    assert [e["event_type"] for e in silences] == ["opened", "resolved", "opened"]


def test_an_unregistered_sensor_is_replayed_without_declared_ranges(database_url, tmp_path):
    sensor = f"meter-replay-{uuid.uuid4().hex[:6]}"
    asyncio.run(store(database_url, sensor, interval_s=None))
    _, events, _, _ = replay(tmp_path, database_url, sensor, "c")
    assert not [e for e in events if e["kind"] == "out_of_range"]
