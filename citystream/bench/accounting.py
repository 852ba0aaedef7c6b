"""What reached TimescaleDB: counts while draining, and lost / duplicate (sensor_id, seq) by set comparison."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

import asyncpg

from citystream.bench.fleet import key_of


async def create_database(admin_url: str) -> str:
    """A fresh database for one benchmark run (migrated by the caller); its name starts with `cs_bench_`."""
    name = f"cs_bench_{uuid.uuid4().hex[:10]}"
    connection = await asyncpg.connect(admin_url, timeout=10)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return f"{admin_url.rpartition('/')[0]}/{name}"


async def drop_database(admin_url: str, url: str) -> None:
    name = url.rpartition("/")[2]
    connection = await asyncpg.connect(admin_url, timeout=10)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


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


async def account(url: str, sensor_ids: list[str], seq_low: int, seq_high: int, acked: set[int]) -> Accounting:
    index = {sensor_id: i for i, sensor_id in enumerate(sensor_ids)}
    connection = await asyncpg.connect(url, timeout=10)
    try:
        rows = await connection.fetch("SELECT sensor_id, seq, count(*) AS n FROM readings WHERE seq >= $1 AND "
                                      "seq < $2 GROUP BY sensor_id, seq", seq_low, seq_high)
    finally:
        await connection.close()
    stored = {key_of(index[r["sensor_id"]], r["seq"]) for r in rows if r["sensor_id"] in index}
    duplicates = sum(r["n"] - 1 for r in rows)
    return Accounting(len(acked), len(stored), len(acked - stored), duplicates, len(stored - acked))
