"""A sensor's rate limit holds across two gates and across a rebalance. Raw records are keyed by sensor id, so one
sensor's readings are on one partition and its bucket lives in the one gate consuming it; when that gate dies, the
survivor takes the partition over and starts the sensor's bucket with a tenth of its allowance
(services/ingest/ratelimit.py), so the sensor gets one quota (and that tenth) in total, never one per gate."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx

from citystream.bench.load import LoadResult, kafka_load
from tests.integration.scaleout.harness import SEQ_SPAN, ScaleOutPlatform

QUOTA_PER_MINUTE = 60  # one token a second, a minute's allowance of 60
BURST = 150  # readings sent at once, well over the quota, in each of the two phases
SENSORS_GAUGE = "citystream_ingest_register_sensors"
REBALANCED_GAUGE = "citystream_ingest_gate_rebalanced_at_seconds"


def metric_lines(url: str, name: str) -> list[str]:
    return [line for line in httpx.get(url + "/metrics", timeout=5).text.splitlines() if line.startswith(name)]


def rate_limited_by(url: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in metric_lines(url, "citystream_ingest_readings_total")
               if 'path="kafka"' in line and 'reason="RATE_LIMITED"' in line)


async def decided(database_url: str, sensor_id: str, expected: int, timeout_s: float = 60) -> tuple[set, dict]:
    """(seqs stored as readings, rejection count by reason) once `expected` distinct seqs of the sensor were
    decided either way."""
    connection = await asyncpg.connect(database_url, timeout=10)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            admitted = {r["seq"] for r in await connection.fetch(
                "SELECT DISTINCT seq FROM readings WHERE sensor_id = $1", sensor_id)}
            refused = await connection.fetch("SELECT reason, seq FROM rejections WHERE sensor_id = $1", sensor_id)
            if len(admitted | {r["seq"] for r in refused}) >= expected or time.monotonic() > deadline:
                reasons: dict[str, int] = {}
                for row in refused:
                    reasons[row["reason"]] = reasons.get(row["reason"], 0) + 1
                return admitted, reasons
            await asyncio.sleep(0.5)
    finally:
        await connection.close()


def ceiling(first: LoadResult, last: LoadResult, takeovers: int) -> float:
    """What a token bucket may grant between the first and the last reading sent: a minute's allowance, one token a
    second of the time between, and a tenth of the allowance per takeover."""
    return QUOTA_PER_MINUTE + (last.ended - first.started) * QUOTA_PER_MINUTE / 60 + takeovers * QUOTA_PER_MINUTE / 10


async def test_one_sensors_quota_holds_across_two_gates_and_a_rebalance(two_each: ScaleOutPlatform):
    gates = two_each.members("ingest-gate")
    fleet = await two_each.declare("quota-", 1, rate_limit_per_minute=QUOTA_PER_MINUTE)
    sensor = fleet.sensor_ids[0]
    deadline = time.monotonic() + 30
    while not all(float(metric_lines(g.url, SENSORS_GAUGE + " ")[0].rsplit(" ", 1)[1]) > len(two_each.fleet.sensor_ids)
                  for g in gates):  # both gates know the new sensor and its credential
        assert time.monotonic() < deadline, "the gates never learned the quota sensor"
        await asyncio.sleep(0.3)
    # A minute after the gates' last rebalance, so the owner's bucket starts full: phase 1 spends a whole quota.
    rebalanced_at = max(float(metric_lines(g.url, REBALANCED_GAUGE + " ")[0].rsplit(" ", 1)[1]) for g in gates)
    await asyncio.sleep(max(0.0, rebalanced_at + 61 - time.time()))
    limited_before = [rate_limited_by(g.url) for g in gates]

    def burst(seq_base: int):
        return kafka_load(two_each.kafka, two_each.raw_topic, fleet, duration_s=30, seq_base=seq_base,
                          max_records=BURST, chunk=BURST)

    # Phase 1: both gates run; the one owning the sensor's partition grants at most the quota.
    first = await burst(5 * SEQ_SPAN)
    assert len(first.accepted_keys) == BURST
    admitted, reasons = await decided(two_each.database_url, sensor, BURST)
    assert QUOTA_PER_MINUTE <= len(admitted) <= ceiling(first, first, 0), (len(admitted), reasons)
    assert reasons == {"RATE_LIMITED": BURST - len(admitted)}, reasons
    owners = [g for g, before in zip(gates, limited_before) if rate_limited_by(g.url) > before]
    assert len(owners) == 1, "one gate alone decided the sensor's readings"

    # Phase 2: the owner dies; the survivor takes the partition over and gates the next burst.
    owner = owners[0]
    survivor = next(g for g in gates if g is not owner)
    await asyncio.to_thread(owner.kill)
    survivor_limited = rate_limited_by(survivor.url)
    second = await burst(5 * SEQ_SPAN)  # the fleet's seq counter goes on: BURST + 1 .. 2 × BURST
    admitted, reasons = await decided(two_each.database_url, sensor, 2 * BURST)
    assert rate_limited_by(survivor.url) > survivor_limited, "the survivor gated the second burst"
    # One quota (and a tenth) in total over both gates and the takeover (a fresh bucket at the survivor: 60 more).
    assert len(admitted) <= ceiling(first, second, 1), (len(admitted), ceiling(first, second, 1), reasons)
    assert len(admitted) + reasons.get("RATE_LIMITED", 0) >= 2 * BURST and set(reasons) == {"RATE_LIMITED"}
    print(f"\nquota across a gate takeover: {len(admitted)} of {2 * BURST} admitted, ceiling "
          f"{ceiling(first, second, 1):.1f} (one quota of {QUOTA_PER_MINUTE}/min over "
          f"{second.ended - first.started:.1f} s)")
