"""Query-parameter parsing shared by routes: bounding boxes, comma lists, time ranges, pagination."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

from services.api.directory import BBox
from services.api.errors import ApiError

MAX_PAGE = 500


def parse_bbox(text: str | None, field: str = "bbox") -> BBox | None:
    if text is None:
        return None
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or not all(abs(v) < 1e9 for v in values):
        raise ApiError(422, "INVALID_PARAMETER", "expected min_lon,min_lat,max_lon,max_lat", field)
    min_lon, min_lat, max_lon, max_lat = values
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise ApiError(422, "INVALID_PARAMETER", "bbox must be min_lon,min_lat,max_lon,max_lat in degrees", field)
    return values  # type: ignore[return-value]


def parse_list(text: str | None, allowed: type[StrEnum], field: str) -> list[str]:
    """'high,critical' → ['high', 'critical'], each checked against the enum."""
    if not text:
        return []
    values = [part.strip() for part in text.split(",") if part.strip()]
    known = {member.value for member in allowed}
    for value in values:
        if value not in known:
            raise ApiError(422, "INVALID_PARAMETER", f"{value!r} is not one of {sorted(known)}", field)
    return values


def time_range(start: datetime | None, end: datetime | None, default: timedelta) -> tuple[datetime, datetime]:
    for value, field in ((start, "start"), (end, "end")):
        if value is not None and value.tzinfo is None:
            raise ApiError(422, "INVALID_PARAMETER", "timestamp must carry a timezone, e.g. ...Z", field)
    end = end or datetime.now(UTC)
    start = start or end - default
    if start >= end:
        raise ApiError(422, "INVALID_PARAMETER", "start must be before end", "start")
    return start, end


def next_offset(offset: int, limit: int, total: int) -> int | None:
    return offset + limit if offset + limit < total else None
