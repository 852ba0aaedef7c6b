"""Rejected readings on `citystream.readings.rejected.v1`: never dropped, always explained."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from schemas.common import AwareDatetime, WireModel


class RejectionReason(StrEnum):
    """Stable reason codes. Each maps to exactly one HTTP status on the ingest API (see `HTTP_STATUS`)."""

    UNKNOWN_SENSOR = "UNKNOWN_SENSOR"
    SENSOR_NOT_ACTIVE = "SENSOR_NOT_ACTIVE"
    SENSOR_EXPIRED = "SENSOR_EXPIRED"
    BAD_CREDENTIALS = "BAD_CREDENTIALS"
    SENSOR_MISMATCH = "SENSOR_MISMATCH"
    UNDECLARED_METRIC = "UNDECLARED_METRIC"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    MALFORMED = "MALFORMED"
    TIMESTAMP_IN_FUTURE = "TIMESTAMP_IN_FUTURE"
    TIMESTAMP_TOO_OLD = "TIMESTAMP_TOO_OLD"
    RATE_LIMITED = "RATE_LIMITED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    BATCH_TOO_LARGE = "BATCH_TOO_LARGE"


# One documented status per rejection path, after Eclipse Hono's HTTP adapter. Two reasons also refuse a whole HTTP
# request with the same status: BAD_CREDENTIALS (401) when the credential is valid for no sensor, answered and stored
# once per request with the count of its readings (never per reading), and RATE_LIMITED (429 with Retry-After) when a
# client address sent too many such requests (counted in a metric, nothing stored).
HTTP_STATUS: dict[RejectionReason, int] = {
    RejectionReason.UNKNOWN_SENSOR: 404,
    RejectionReason.SENSOR_NOT_ACTIVE: 403,
    RejectionReason.SENSOR_EXPIRED: 403,
    RejectionReason.BAD_CREDENTIALS: 401,
    RejectionReason.SENSOR_MISMATCH: 403,
    RejectionReason.UNDECLARED_METRIC: 422,
    RejectionReason.OUT_OF_RANGE: 422,
    RejectionReason.MALFORMED: 400,
    RejectionReason.TIMESTAMP_IN_FUTURE: 422,
    RejectionReason.TIMESTAMP_TOO_OLD: 422,
    RejectionReason.RATE_LIMITED: 429,
    RejectionReason.PAYLOAD_TOO_LARGE: 413,
    RejectionReason.BATCH_TOO_LARGE: 413,
}


class RejectedReading(WireModel):
    """A reading the gate refused, with the reason, the field at fault and the payload as received."""

    event_id: str = Field(description="Unique id of this rejection (UUID).")
    sensor_id: str | None = Field(default=None, description="Sensor the payload claimed, if it could be read.")
    seq: int | None = Field(default=None, description="Sequence number the payload claimed, if readable.")
    reason: RejectionReason = Field(description="Stable reason code; see `HTTP_STATUS` for its HTTP status.")
    detail: str = Field(description="Human-readable explanation, e.g. `averageVehicleSpeed 412.0 > max 250.0`.")
    field: str | None = Field(default=None, description="The field at fault, dotted path, e.g. `metrics.voltage`.")
    source: str = Field(description="Which gate refused it: `http` or `kafka`.", examples=["http"])
    received_at: AwareDatetime = Field(description="When the gate received it (ingest clock).")
    payload: Any = Field(
        default=None,
        description="The offending reading as received (JSON), or a UTF-8 string when it was not valid JSON.",
    )
