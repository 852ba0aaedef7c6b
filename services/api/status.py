"""A sensor's status on the ops-centre map, from its last reading, open alerts and recent rejections (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum


class MapStatus(StrEnum):
    OK = "ok"
    ALERTING = "alerting"
    SILENT = "silent"
    REJECTED = "rejected"  # sending data the ingest refuses


DEFAULT_INTERVAL_S = 300.0


def sensor_status(*, now: datetime, last_observed_at: datetime | None, open_alerts: int, recent_rejections: int,
                  reporting_interval_s: float | None, silence_factor: float) -> MapStatus:
    """Most urgent first: an open alert, then refused data, then silence."""
    if open_alerts > 0:
        return MapStatus.ALERTING
    if recent_rejections > 0:
        return MapStatus.REJECTED
    allowed = timedelta(seconds=(reporting_interval_s or DEFAULT_INTERVAL_S) * silence_factor)
    if last_observed_at is None or now - last_observed_at > allowed:
        return MapStatus.SILENT
    return MapStatus.OK
