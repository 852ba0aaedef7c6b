"""What reached TimescaleDB: counts while draining, lost / duplicate (sensor_id, seq) by set comparison, and the
rejections stored for a phase's seq range (table `rejections`, written by the sink from the rejected topic)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg

from citystream.bench.fleet import key_of
from services.common.kafka import make_admin, make_consumer, topic_partitions
from services.common.settings import KafkaAccess


async def wait_group_caught_up(kafka: KafkaAccess, group_id: str, topics: list[str], *, timeout_s: float = 120.0,
                               interval_s: float = 0.25) -> float | None:
    """Waits until consumer group `group_id` has committed every partition of `topics` up to its log end (the sink
    commits a record only once it is stored). Asks the broker, not the database: the benchmark reads the CPU its
    services used once they are done, and a count(*) over the readings every quarter second would add to
    PostgreSQL's figure what is the benchmark's own work. Returns the wall time it was seen caught up (None: the
    timeout)."""
    admin, consumer = make_admin(kafka), make_consumer(kafka, None)
    await admin.start()
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, topics)
        deadline = time.monotonic() + timeout_s
        while True:
            ends = await consumer.end_offsets(partitions)
            committed = await admin.list_consumer_group_offsets(group_id, partitions=partitions)
            if all(end == 0 or (tp in committed and committed[tp].offset >= end) for tp, end in ends.items()):
                return time.time()
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(interval_s)
    finally:
        await consumer.stop()
        await admin.close()


async def count_range(connection: asyncpg.Connection, seq_low: int, seq_high: int) -> int:
    return await connection.fetchval("SELECT count(*) FROM readings WHERE seq >= $1 AND seq < $2", seq_low, seq_high)


async def drain(url: str, seq_low: int, seq_high: int, expected: int, *, timeout_s: float = 120.0,
                stall_s: float = 20.0) -> tuple[int, float]:
    """Waits until `expected` rows of the seq range are stored (or nothing moves for `stall_s`).

    Returns (rows stored, wall time when the last of them was seen).
    """
    connection = await asyncpg.connect(url, timeout=10)
    try:
        deadline = time.monotonic() + timeout_s
        count, last_change, seen_at = -1, time.monotonic(), time.time()
        while time.monotonic() < deadline:
            now_count = await count_range(connection, seq_low, seq_high)
            if now_count != count:
                count, last_change, seen_at = now_count, time.monotonic(), time.time()
            if count >= expected or time.monotonic() - last_change > stall_s:
                break
            await asyncio.sleep(0.25)
        return count, seen_at
    finally:
        await connection.close()


@dataclass(frozen=True)
class Accounting:
    acked: int
    stored: int
    lost: int  # acknowledged but never stored
    duplicates: int  # the same (sensor_id, seq) stored more than once
    unexpected: int  # stored but never acknowledged (a request that timed out client-side yet landed)


def compare(acked: set[int], stored_rows: Iterable[tuple[str, int, int]], sensor_ids: list[str]) -> Accounting:
    """The books of one phase: `stored_rows` are (sensor_id, seq, times stored); `acked` the (sensor, seq) keys
    that got a 2xx / a Kafka ack. Lost = acked − stored, by set, never by count. A stored row of a sensor outside
    the fleet counts as stored-but-not-acked."""
    index = {sensor_id: i for i, sensor_id in enumerate(sensor_ids)}
    stored: set[int] = set()
    duplicates = foreign = 0
    for sensor_id, seq, times in stored_rows:
        duplicates += times - 1
        if sensor_id in index:
            stored.add(key_of(index[sensor_id], seq))
        else:
            foreign += 1
    return Accounting(len(acked), len(stored) + foreign, len(acked - stored), duplicates,
                      len(stored - acked) + foreign)


async def account(url: str, sensor_ids: list[str], seq_low: int, seq_high: int, acked: set[int]) -> Accounting:
    connection = await asyncpg.connect(url, timeout=10)
    try:
        rows = await connection.fetch("SELECT sensor_id, seq, count(*) AS n FROM readings WHERE seq >= $1 AND "
                                      "seq < $2 GROUP BY sensor_id, seq", seq_low, seq_high)
    finally:
        await connection.close()
    return compare(acked, ((r["sensor_id"], r["seq"], r["n"]) for r in rows), sensor_ids)


# A rejection names its seq when the gate got that far; an unknown sensor's rejection carries it in the payload.
_REJECTIONS = """
SELECT reason, count(*) AS n FROM rejections
WHERE COALESCE(seq, CASE WHEN jsonb_typeof(payload) = 'object' AND payload->>'seq' ~ '^[0-9]{1,18}$'
                         THEN (payload->>'seq')::bigint END) >= $1
  AND COALESCE(seq, CASE WHEN jsonb_typeof(payload) = 'object' AND payload->>'seq' ~ '^[0-9]{1,18}$'
                         THEN (payload->>'seq')::bigint END) < $2
GROUP BY reason
"""


async def rejections(url: str, seq_low: int, seq_high: int, expected: int, *, timeout_s: float = 30.0,
                     stall_s: float = 5.0) -> dict[str, int]:
    """Rejections stored for the seq range by reason, once `expected` of them are in (or nothing moves)."""
    connection = await asyncpg.connect(url, timeout=10)
    try:
        deadline = time.monotonic() + timeout_s
        found: dict[str, int] = {}
        last_change = time.monotonic()
        while True:
            now = {r["reason"]: r["n"] for r in await connection.fetch(_REJECTIONS, seq_low, seq_high)}
            if now != found:
                found, last_change = now, time.monotonic()
            if sum(found.values()) >= expected or time.monotonic() > deadline \
                    or time.monotonic() - last_change > stall_s:
                return found
            await asyncio.sleep(0.25)
    finally:
        await connection.close()
