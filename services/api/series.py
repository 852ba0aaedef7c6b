"""Time-series queries on `readings` (raw jsonb metrics) and `rollups_1m`: time_bucket aggregates, last N, latest."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

AGGREGATES = ("avg", "min", "max", "sum", "count", "last")
MIN_BUCKET_S = 60
MAX_POINTS = 10_000
# Above this range (and with buckets of 5 min or more) one-minute rollups answer faster than raw readings.
RAW_RANGE_LIMIT = timedelta(hours=6)
_BUCKET = re.compile(r"^(\d{1,7})(s|m|h|d)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_bucket(text: str) -> int:
    """'5m' → 300 seconds. Raises ValueError with the reason."""
    match = _BUCKET.match(text.strip())
    if not match:
        raise ValueError("bucket must look like 30s, 5m, 1h or 1d")
    seconds = int(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds < MIN_BUCKET_S:
        raise ValueError("bucket must be at least 1 minute")
    if seconds > 31 * 86400:
        raise ValueError("bucket must be at most 31 days")
    return seconds


def choose_source(requested: str, bucket_s: int, start: datetime, end: datetime) -> str:
    if requested != "auto":
        return requested
    return "rollups" if bucket_s >= 300 and end - start > RAW_RANGE_LIMIT else "raw"


_VALUE = "CASE WHEN jsonb_typeof(metrics->$2) = 'number' THEN (metrics->>$2)::float8 END"

RAW_SERIES_SQL = f"""
SELECT time_bucket($1::interval, observed_at) AS bucket_start,
       avg(v) AS avg, min(v) AS min, max(v) AS max, sum(v) AS sum, count(v) AS count,
       last(v, observed_at) AS last
FROM (SELECT observed_at, {_VALUE} AS v FROM readings
      WHERE sensor_id = $3 AND observed_at >= $4 AND observed_at < $5) AS points
WHERE v IS NOT NULL
GROUP BY 1 ORDER BY 1
"""

ROLLUP_SERIES_SQL = """
SELECT time_bucket($1::interval, window_start) AS bucket_start,
       sum(mean * count) / nullif(sum(count), 0) AS avg, min(min) AS min, max(max) AS max,
       sum(mean * count) AS sum, sum(count)::bigint AS count, last(last, window_start) AS last
FROM rollups_1m
WHERE metric = $2 AND sensor_id = $3 AND window_start >= $4 AND window_start < $5
GROUP BY 1 ORDER BY 1
"""

LAST_READINGS_SQL = """
SELECT seq, observed_at, received_at, domain, register_version, metrics FROM readings
WHERE sensor_id = $1 AND observed_at >= $2 ORDER BY observed_at DESC, seq DESC LIMIT $3
"""

DOMAIN_LATEST_SQL = """
SELECT * FROM (
  SELECT DISTINCT ON (sensor_id) sensor_id, seq, observed_at, metrics FROM readings
  WHERE domain = $1 AND observed_at >= $2 ORDER BY sensor_id, observed_at DESC
) AS latest ORDER BY sensor_id LIMIT $3 OFFSET $4
"""

SENSORS_LATEST_SQL = """
SELECT DISTINCT ON (sensor_id) sensor_id, domain, seq, observed_at, metrics FROM readings
WHERE sensor_id = ANY($1::text[]) AND observed_at >= $2 ORDER BY sensor_id, observed_at DESC
"""

SEEN_SENSORS_SQL = """
SELECT DISTINCT sensor_id FROM readings WHERE observed_at >= $1 AND ($2::text IS NULL OR domain = $2)
"""

RECENT_REJECTIONS_SQL = """
SELECT sensor_id, count(*) AS rejected, max(received_at) AS last_rejected_at FROM rejections
WHERE sensor_id = ANY($1::text[]) AND received_at >= $2 GROUP BY sensor_id
"""


async def series(connection, *, sensor_id: str, metric: str, bucket_s: int, start: datetime, end: datetime,
                 source: str) -> list[dict]:
    sql = ROLLUP_SERIES_SQL if source == "rollups" else RAW_SERIES_SQL
    rows = await connection.fetch(sql, timedelta(seconds=bucket_s), metric, sensor_id, start, end)
    return [dict(row) for row in rows]
