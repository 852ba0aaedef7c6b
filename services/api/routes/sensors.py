"""Sensor routes: bucketed time series, last N readings, latest per domain, sensors in an area with status.

Reads `readings`, `rollups_1m`, `rejections`, `alert_events`; locations come from the register topic.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from schemas.common import METRICS_BY_DOMAIN, SENSOR_ID_PATTERN, Domain
from services.api import alert_store, series
from services.api.auth import SECURED, Role, policy
from services.api.errors import ERROR_RESPONSES, ApiError
from services.api.models import (
    EXAMPLE_READING,
    EXAMPLE_SENSOR,
    Page,
    ReadingPublic,
    SensorPublic,
    SeriesPoint,
    SeriesResponse,
    example_page,
    example_response,
)
from services.api.params import MAX_PAGE, next_offset, parse_bbox, time_range
from services.api.status import sensor_status

router = APIRouter(prefix="/v1", tags=["sensors"], responses=ERROR_RESPONSES, dependencies=SECURED)
VIEWER = policy(Role.VIEWER)
ALL_METRICS = sorted({metric for metrics in METRICS_BY_DOMAIN.values() for metric in metrics})
SensorPath = Annotated[str, Path(pattern=SENSOR_ID_PATTERN, examples=["traffic-ams-0042"])]
REJECTION_WINDOW = timedelta(minutes=15)


@router.get("/sensors/{sensor_id}/series", response_model=SeriesResponse, openapi_extra=VIEWER)
async def sensor_series(
    request: Request, sensor_id: SensorPath,
    metric: Annotated[str, Query(description=f"One of {ALL_METRICS}", examples=["intensity"])],
    start: Annotated[datetime | None, Query(description="Inclusive; default end - 6 h")] = None,
    end: Annotated[datetime | None, Query(description="Exclusive; default now")] = None,
    bucket: Annotated[str, Query(description="Bucket width ≥ 1 min: 1m, 5m, 1h, 1d", examples=["5m"])] = "5m",
    agg: Annotated[str, Query(description=f"Comma list of {list(series.AGGREGATES)}")] = "avg,min,max",
    source: Annotated[str, Query(pattern="^(auto|raw|rollups)$", description="auto picks rollups for long ranges")]
    = "auto",
) -> SeriesResponse:
    """One sensor's metric aggregated per `time_bucket`."""
    if metric not in ALL_METRICS:
        raise ApiError(422, "INVALID_PARAMETER", f"unknown metric {metric!r}", "metric")
    try:
        bucket_s = series.parse_bucket(bucket)
    except ValueError as problem:
        raise ApiError(422, "INVALID_PARAMETER", str(problem), "bucket") from problem
    aggregates = [part.strip() for part in agg.split(",") if part.strip()]
    if not aggregates or any(name not in series.AGGREGATES for name in aggregates):
        raise ApiError(422, "INVALID_PARAMETER", f"agg must be a comma list of {list(series.AGGREGATES)}", "agg")
    start, end = time_range(start, end, timedelta(hours=6))
    if (end - start).total_seconds() / bucket_s > series.MAX_POINTS:
        raise ApiError(422, "INVALID_PARAMETER", f"more than {series.MAX_POINTS} buckets; widen the bucket", "bucket")
    chosen = series.choose_source(source, bucket_s, start, end)
    async with request.app.state.api.pool.acquire() as connection:
        rows = await series.series(connection, sensor_id=sensor_id, metric=metric, bucket_s=bucket_s,
                                   start=start, end=end, source=chosen)
        if not rows and chosen == "rollups" and source == "auto":
            chosen = "raw"  # rollups not written (yet) for this range: answer from the readings themselves
            rows = await series.series(connection, sensor_id=sensor_id, metric=metric, bucket_s=bucket_s,
                                       start=start, end=end, source=chosen)
    points = [SeriesPoint(bucket_start=row["bucket_start"], **{name: row[name] for name in aggregates})
              for row in rows]
    return SeriesResponse(sensor_id=sensor_id, metric=metric, bucket_seconds=bucket_s, source=chosen, start=start,
                          end=end, aggregates=aggregates, points=points)


@router.get("/sensors/{sensor_id}/readings", response_model=list[ReadingPublic], openapi_extra=VIEWER,
            responses=example_response([EXAMPLE_READING]))
async def last_readings(
    request: Request, sensor_id: SensorPath,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    lookback_hours: Annotated[int, Query(ge=1, le=24 * 3660)] = 24 * 7,
) -> list[ReadingPublic]:
    """The last `limit` readings of a sensor, newest first."""
    since = datetime.now(UTC) - timedelta(hours=lookback_hours)
    async with request.app.state.api.pool.acquire() as connection:
        rows = await connection.fetch(series.LAST_READINGS_SQL, sensor_id, since, limit)
    return [ReadingPublic(sensor_id=sensor_id, seq=row["seq"], observed_at=row["observed_at"],
                          received_at=row["received_at"], metrics=row["metrics"]) for row in rows]


@router.get("/domains/{domain}/latest", response_model=Page[ReadingPublic], openapi_extra=VIEWER,
            responses=example_response(example_page(EXAMPLE_READING)))
async def domain_latest(
    request: Request, domain: Domain,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100, offset: Annotated[int, Query(ge=0, le=10**6)] = 0,
    lookback_hours: Annotated[int, Query(ge=1, le=24 * 30)] = 24,
) -> Page[ReadingPublic]:
    """The latest reading of every sensor of a domain that reported within `lookback_hours`."""
    since = datetime.now(UTC) - timedelta(hours=lookback_hours)
    async with request.app.state.api.pool.acquire() as connection:
        total = await connection.fetchval(
            "SELECT count(DISTINCT sensor_id) FROM readings WHERE domain = $1 AND observed_at >= $2",
            domain.value, since)
        rows = await connection.fetch(series.DOMAIN_LATEST_SQL, domain.value, since, limit, offset)
    items = [ReadingPublic(sensor_id=row["sensor_id"], seq=row["seq"], observed_at=row["observed_at"],
                           metrics=row["metrics"]) for row in rows]
    return Page(items=items, total=total, limit=limit, offset=offset, next_offset=next_offset(offset, limit, total))


@router.get("/sensors", response_model=Page[SensorPublic], openapi_extra=VIEWER,
            responses=example_response(example_page(EXAMPLE_SENSOR)))
async def sensors_in_area(
    request: Request,
    bbox: Annotated[str | None, Query(description="min_lon,min_lat,max_lon,max_lat (WGS84)",
                                      examples=["4.85,52.35,4.95,52.40"])] = None,
    domain: Domain | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 200, offset: Annotated[int, Query(ge=0, le=10**6)] = 0,
) -> Page[SensorPublic]:
    """Sensors with their latest values, open alerts and map status. With `bbox`, only sensors whose registered
    location lies inside it (sensors without a known location are omitted)."""
    state = request.app.state.api
    area = parse_bbox(bbox)
    now = datetime.now(UTC)
    directory = state.directory
    async with state.pool.acquire() as connection:
        if area is not None:
            candidates = directory.in_bbox(area)
        else:
            seen = await connection.fetch(series.SEEN_SENSORS_SQL, now - timedelta(days=1),
                                          domain.value if domain else None)
            candidates = sorted(set(directory.sensors) | {row["sensor_id"] for row in seen})
        if domain is not None:
            candidates = [s for s in candidates if s not in directory.sensors or directory.sensors[s].domain == domain]
        total = len(candidates)
        page_ids = candidates[offset:offset + limit]
        latest = {row["sensor_id"]: row for row in await connection.fetch(
            series.SENSORS_LATEST_SQL, page_ids, now - timedelta(days=7))}
        rejected = {row["sensor_id"]: row["rejected"] for row in await connection.fetch(
            series.RECENT_REJECTIONS_SQL, page_ids, now - REJECTION_WINDOW)}
        alerts = await alert_store.open_alerts_by_sensor(connection, page_ids)
    items = []
    for sensor_id in page_ids:
        record, row = directory.sensors.get(sensor_id), latest.get(sensor_id)
        open_alerts = alerts.get(sensor_id, [])
        items.append(SensorPublic(
            sensor_id=sensor_id, domain=record.domain if record else (row["domain"] if row else None),
            location=record.location if record else None,
            status=sensor_status(now=now, last_observed_at=row["observed_at"] if row else None,
                                 open_alerts=len(open_alerts), recent_rejections=rejected.get(sensor_id, 0),
                                 reporting_interval_s=record.reporting_interval_s if record else None,
                                 silence_factor=state.settings.api_silence_factor),
            last_observed_at=row["observed_at"] if row else None, latest=row["metrics"] if row else {},
            recent_rejections=rejected.get(sensor_id, 0), open_alerts=open_alerts))
    return Page(items=items, total=total, limit=limit, offset=offset, next_offset=next_offset(offset, limit, total))
