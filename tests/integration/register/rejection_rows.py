"""Test data: rejection rows written straight into the `rejections` table, as the ingest sink would."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import orjson


async def insert_rejections(database_url: str, rows: list[tuple[str | None, str, datetime]]) -> None:
    """One row per (sensor_id, reason, received_at); seq = position, field `metrics.intensity`, a small payload."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.executemany(
            "INSERT INTO rejections (received_at, event_id, sensor_id, seq, reason, detail, field, source, payload)"
            " VALUES ($1, $2, $3, $4, $5, $6, 'metrics.intensity', 'http', $7::jsonb)",
            [(at, uuid.uuid4(), sensor_id, index, reason, f"test {reason}",
              orjson.dumps({"seq": index, "metrics": {"intensity": -1}}).decode())
             for index, (sensor_id, reason, at) in enumerate(rows)])
    finally:
        await conn.close()
