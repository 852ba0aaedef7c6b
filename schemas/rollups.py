"""One-minute per-sensor, per-metric aggregates on `citystream.rollups.1m.v1`."""

from __future__ import annotations

from pydantic import Field

from schemas.common import AwareDatetime, Domain, SensorId, WireModel


class Rollup(WireModel):
    """Aggregate of one metric of one sensor over a tumbling one-minute window `[window_start, window_end)`."""

    sensor_id: SensorId
    domain: Domain
    metric: str
    window_start: AwareDatetime
    window_end: AwareDatetime
    count: int = Field(ge=1)
    min: float
    max: float
    mean: float
    last: float = Field(description="Value of the latest reading (by observed_at) in the window.")
