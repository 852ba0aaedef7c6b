"""Reads the alert events of the simulated sensors from TimescaleDB (`alert_events`) for `citystream simulate score`."""

from __future__ import annotations

from typing import Any

import asyncpg


async def fetch_alert_events(database_url: str, labels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    run = next((label for label in labels if label.get("category") == "run"), {})
    sensor_ids = run.get("sensor_ids") or sorted({label["sensor_id"] for label in labels})
    connection = await asyncpg.connect(database_url, timeout=10)
    try:
        rows = await connection.fetch(
            "SELECT sensor_id, kind, event_type, extract(epoch FROM occurred_at) AS occurred_at "
            "FROM alert_events WHERE sensor_id = ANY($1::text[]) AND occurred_at >= to_timestamp($2)",
            sensor_ids, float(run.get("start", 0)))
    finally:
        await connection.close()
    return [dict(row) | {"occurred_at": float(row["occurred_at"])} for row in rows]
