"""A short simulation against real register, ingest HTTP and sink processes: the city's readings land in
TimescaleDB, and every kind of bad traffic is refused with its reason (checked in the responses and the tables)."""

from __future__ import annotations

import asyncio
from collections import Counter

import asyncpg

from citystream.simulate.badtraffic import EXPECTED_REASON, BadKind
from services.anomaly.labels import read_labels
from citystream.simulate.runner import RunOptions, Simulation
from citystream.simulate.settings import SimulateSettings


async def _stored(database_url: str) -> tuple[list, Counter]:
    connection = await asyncpg.connect(database_url)
    try:
        readings = await connection.fetch("SELECT sensor_id, seq FROM readings")
        rejections = Counter()
        for row in await connection.fetch("SELECT sensor_id, reason FROM rejections"):
            rejections[(row["sensor_id"], row["reason"])] += 1
        return readings, rejections
    finally:
        await connection.close()


async def _wait_stored(database_url: str, admitted: int) -> tuple[list, Counter]:
    for _ in range(60):
        readings, rejections = await _stored(database_url)
        if len(readings) >= admitted:
            return readings, rejections
        await asyncio.sleep(0.5)
    return readings, rejections


def test_short_simulation_lands_readings_and_refuses_bad_traffic(live_services, fresh_database_url, tmp_path):
    settings = SimulateSettings(register_url=live_services["register"].url,
                                ingest_url=live_services["ingest-http"].url, database_url=fresh_database_url)
    labels_path = tmp_path / "labels.jsonl"
    # 12 sensors at 12 readings/s → one round a second; `expired` ends 4 s in, the suspension comes at round 3.
    options = RunOptions(seed=5, sensors=12, rate=12, duration_s=9, labels_path=labels_path, prefix="itsim-",
                         expire_after_s=4, suspend_at_round=3)
    simulation = Simulation(settings, options)
    stop = asyncio.Event()
    tally = asyncio.run(simulation.run(stop))

    assert tally.accepted >= 12 * 5
    assert not tally.rejected, f"the normal fleet must never be refused: {tally.rejected}"
    assert tally.missing_reasons() == []
    for kind, reason in EXPECTED_REASON.items():
        outcomes = tally.by_actor[kind.value]
        allowed = {reason.value, "ACCEPTED"} if kind in (BadKind.SUSPENDED, BadKind.EXPIRED, BadKind.OVER_QUOTA) \
            else {reason.value}
        assert set(outcomes) <= allowed, (kind, outcomes)

    admitted = tally.accepted + sum(t["ACCEPTED"] for t in tally.by_actor.values())
    readings, rejections = asyncio.run(_wait_stored(fresh_database_url, admitted))
    stored_fleet = {(r["sensor_id"], r["seq"]) for r in readings if not r["sensor_id"].startswith("itsim-bad-")}
    assert len(stored_fleet) >= tally.accepted
    assert len(readings) == len({(r["sensor_id"], r["seq"]) for r in readings}), "duplicates stored"
    for kind, reason in EXPECTED_REASON.items():
        sensor_id = f"itsim-bad-{kind.value.replace('_', '-')}"
        assert rejections[(sensor_id, reason.value)] > 0, (kind, reason, rejections)

    labels = read_labels(labels_path)
    assert labels[0]["category"] == "run" and len(labels[0]["sensor_ids"]) == 12
    kinds = {label["kind"] for label in labels if label["category"] == "bad_traffic"}
    assert kinds == {kind.value for kind in BadKind}
