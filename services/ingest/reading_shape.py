"""Exact structural check of a raw reading (RawReading's contract) with plain Python, off pydantic's hot path."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.common import SENSOR_ID_PATTERN

FIELDS = frozenset({"sensor_id", "seq", "observed_at", "metrics"})
MAX_SEQ = 2**63 - 1
MAX_METRICS = 16
_SENSOR_ID = re.compile(SENSOR_ID_PATTERN)
# RFC 3339 with a mandatory offset: the form pydantic and every integrator agree on.
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True, slots=True)
class ReadingShape:
    sensor_id: str | None
    seq: int
    observed_at: datetime
    metrics: dict[str, float]


class Malformed(ValueError):
    """The reading does not have RawReading's shape; `field` names the part at fault."""

    def __init__(self, field: str | None, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_shape(raw: Any) -> ReadingShape:
    """The reading's fields, typed; raises Malformed. Stricter than pydantic's lax mode: no numbers in strings."""
    if not isinstance(raw, dict):
        raise Malformed(None, f"a reading must be a JSON object, got {type(raw).__name__}")
    for name in raw:
        if name not in FIELDS:
            raise Malformed(str(name), f"unknown field {name!r}: received_at, domain and register_version "
                                       "are set by the gate")
    sensor_id = raw.get("sensor_id")
    if sensor_id is not None and not (isinstance(sensor_id, str) and _SENSOR_ID.match(sensor_id)):
        raise Malformed("sensor_id", f"sensor_id must match {SENSOR_ID_PATTERN}")
    seq = raw.get("seq")
    if not (isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq <= MAX_SEQ):
        raise Malformed("seq", "seq is required: an integer from 0 to 2^63-1")
    observed_at = raw.get("observed_at")
    if not isinstance(observed_at, str) or not _TIMESTAMP.match(observed_at):
        raise Malformed("observed_at", "observed_at is required: RFC 3339 with an offset, e.g. 2026-11-23T08:00:00Z")
    try:
        observed = datetime.fromisoformat(observed_at.upper().replace(" ", "T"))
    except ValueError:
        raise Malformed("observed_at", f"observed_at {observed_at!r} is not a valid date and time") from None
    metrics = raw.get("metrics")
    if not isinstance(metrics, dict) or not 1 <= len(metrics) <= MAX_METRICS:
        raise Malformed("metrics", f"metrics is required: an object of 1 to {MAX_METRICS} name: number pairs")
    for name, value in metrics.items():
        if not _is_number(value):
            raise Malformed(f"metrics.{name}", f"metric {name!r} must be a JSON number")
    return ReadingShape(sensor_id, seq, observed, {name: _to_float(value) for name, value in metrics.items()})


def _to_float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer beyond float range: as infinite as it gets, refused as OUT_OF_RANGE later
        return float("inf") if value > 0 else float("-inf")
