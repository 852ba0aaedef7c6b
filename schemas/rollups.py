"""One-minute per-sensor, per-metric aggregates on `citystream.rollups.1m.v1`."""

from __future__ import annotations

from pydantic import Field

from schemas.common import AwareDatetime, Domain, SensorId, WireModel


class Rollup(WireModel):
    """Aggregate of one metric of one sensor over a tumbling one-minute window `[window_start, window_end)`."""

    sensor_id: SensorId
    domain: Domain = Field(description="The sensor's domain.")
    metric: str = Field(description="Smart Data Models metric name.")
    window_start: AwareDatetime = Field(description="Start of the window (inclusive), on a whole minute.")
    window_end: AwareDatetime = Field(description="End of the window (exclusive), one minute later.")
    count: int = Field(ge=1, description="Readings in the window.")
    min: float = Field(description="Smallest value in the window.")
    max: float = Field(description="Largest value in the window.")
    mean: float = Field(description="Arithmetic mean of the values in the window.")
    last: float = Field(description="Value of the latest reading (by observed_at) in the window.")
