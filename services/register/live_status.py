"""A sensor's public live status — reporting, silent, suspended, retired — from its register status and the age
of its last stored reading (`readings`, newest row per sensor by index; never a reading's values)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from enum import StrEnum

import asyncpg

# A sensor is silent after this many missed reporting intervals (the ops API's default, CITYSTREAM_API_SILENCE_FACTOR).
SILENCE_FACTOR = 3.0
LOOKBACK = timedelta(days=7)
CACHE_S = 30.0  # the public map is anonymous: one lookup per sensor at most every 30 s, however many visitors

LAST_SEEN_SQL = """
SELECT s.sensor_id, s.status, s.reporting_interval_s,
       (SELECT r.observed_at FROM readings r WHERE r.sensor_id = s.sensor_id AND r.observed_at >= $1
        ORDER BY r.observed_at DESC LIMIT 1) AS last_observed_at
FROM register_sensors s WHERE s.status <> 'draft'
"""


class LiveStatus(StrEnum):
    REPORTING = "reporting"
    SILENT = "silent"
    SUSPENDED = "suspended"
    RETIRED = "retired"


def live_status(*, register_status: str, reporting_interval_s: float, last_observed_at: datetime | None,
                now: datetime) -> tuple[LiveStatus, int | None]:
    """(status, age of the last reading in whole minutes' seconds, or None when nothing in the last 7 days)."""
    age_s = None if last_observed_at is None else max(0, int((now - last_observed_at).total_seconds()) // 60 * 60)
    if register_status == "suspended":
        return LiveStatus.SUSPENDED, age_s
    if register_status == "retired":
        return LiveStatus.RETIRED, age_s
    if last_observed_at is not None and (now - last_observed_at).total_seconds() <= reporting_interval_s * SILENCE_FACTOR:
        return LiveStatus.REPORTING, age_s
    return LiveStatus.SILENT, age_s


class LiveStatusCache:
    """The live status of every public sensor, recomputed at most every CACHE_S seconds."""

    def __init__(self, ttl_s: float = CACHE_S) -> None:
        self.ttl_s = ttl_s
        self._at = -1e18
        self._statuses: dict[str, tuple[LiveStatus, int | None]] = {}

    async def get(self, conn: asyncpg.Connection, now: datetime) -> dict[str, tuple[LiveStatus, int | None]]:
        if time.monotonic() - self._at >= self.ttl_s:
            rows = await conn.fetch(LAST_SEEN_SQL, now - LOOKBACK)
            self._statuses = {row["sensor_id"]: live_status(
                register_status=row["status"], reporting_interval_s=row["reporting_interval_s"],
                last_observed_at=row["last_observed_at"], now=now) for row in rows}
            self._at = time.monotonic()
        return self._statuses
