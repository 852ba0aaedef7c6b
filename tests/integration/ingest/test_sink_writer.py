"""write_rows against TimescaleDB: new rows take the direct COPY, a batch holding a stored row is absorbed whole."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson

from services.ingest.sink_writer import write_rows

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def reading_row(sensor_id: str, seq: int) -> tuple:
    at = T0 + timedelta(seconds=seq)
    return (at, sensor_id, seq, "traffic", at, 1, orjson.dumps({"intensity": float(seq)}).decode())


async def test_new_rows_are_copied_and_a_batch_with_stored_rows_is_absorbed(database_url):
    sensor = f"loop-sw-{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(database_url)
    try:
        first = [reading_row(sensor, seq) for seq in range(1, 101)]
        assert await write_rows(connection, {"readings": first}) == {"readings": 100}

        # A redelivered tail (51..100) with new readings (101..150), and one reading twice within the batch.
        again = [reading_row(sensor, seq) for seq in range(51, 151)] + [reading_row(sensor, 150)]
        assert await write_rows(connection, {"readings": again}) == {"readings": 50}

        stored = await connection.fetch("SELECT seq, metrics FROM readings WHERE sensor_id = $1 ORDER BY seq",
                                        sensor)
        assert [row["seq"] for row in stored] == list(range(1, 151))
        assert orjson.loads(stored[-1]["metrics"]) == {"intensity": 150.0}  # jsonb, as the absorbing path casts

        # The transaction stays usable after the refused COPY: later tables of the same call are written.
        rollup = (T0, sensor, "intensity", "traffic", 3, 1.0, 3.0, 2.0, 3.0)
        written = await write_rows(connection, {"readings": [reading_row(sensor, 1)], "rollups_1m": [rollup]})
        assert written == {"readings": 0, "rollups_1m": 1}
    finally:
        await connection.close()
