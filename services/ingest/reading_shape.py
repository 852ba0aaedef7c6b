"""Exact structural check of a raw reading (RawReading's contract) with plain Python, off pydantic's hot path."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

from schemas.common import SENSOR_ID_PATTERN

FIELDS = frozenset({"sensor_id", "seq", "observed_at", "metrics"})
MAX_SEQ = 2**63 - 1
MAX_METRICS = 16
_SENSOR_ID = re.compile(SENSOR_ID_PATTERN)
# RFC 3339 with a mandatory offset: the form pydantic and every integrator agree on.
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})$")


class ReadingShape(NamedTuple):
    sensor_id: str | None
    seq: int
    observed_at: datetime
    metrics: dict[str, float]
    observed_us: int  # observed_at in whole microseconds since the epoch (what the gate's window compares)
    observed_text: str  # observed_at.isoformat(): what the admitted record carries


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def epoch_us(moment: datetime) -> int:
    """An aware datetime as whole microseconds since the epoch: exact (timedelta arithmetic, no float)."""
    return (moment - _EPOCH) // _ONE_US


class Malformed(ValueError):
    """The reading does not have RawReading's shape; `field` names the part at fault."""

    def __init__(self, field: str | None, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and value is not True and value is not False


_NOT_RFC3339, _NOT_A_DATE = "not RFC 3339", "not a date"


@lru_cache(maxsize=4096)
def _parse_timestamp(text: str) -> tuple[datetime, int, str] | str:
    """RFC 3339 text → (aware datetime, its epoch_us, its isoformat), or why not. Memoised: readings of one batch
    or one reporting round share timestamps, and the answer depends on the text alone."""
    if not _TIMESTAMP.match(text):
        return _NOT_RFC3339
    try:
        moment = datetime.fromisoformat(text.upper().replace(" ", "T"))
    except ValueError:
        return _NOT_A_DATE
    return moment, epoch_us(moment), moment.isoformat()


@lru_cache(maxsize=65_536)
def _valid_sensor_id(text: str) -> bool:
    return _SENSOR_ID.match(text) is not None


def check_shape(raw: Any) -> ReadingShape:
    """The reading's fields, typed; raises Malformed. Stricter than pydantic's lax mode: no numbers in strings."""
    if not isinstance(raw, dict):
        raise Malformed(None, f"a reading must be a JSON object, got {type(raw).__name__}")
    if not FIELDS.issuperset(raw):
        for name in raw:
            if name not in FIELDS:
                raise Malformed(str(name), f"unknown field {name!r}: received_at, domain and register_version "
                                           "are set by the gate")
    sensor_id = raw.get("sensor_id")
    if sensor_id is not None and not (isinstance(sensor_id, str) and _valid_sensor_id(sensor_id)):
        raise Malformed("sensor_id", f"sensor_id must match {SENSOR_ID_PATTERN}")
    seq = raw.get("seq")
    if not (isinstance(seq, int) and seq is not True and seq is not False and 0 <= seq <= MAX_SEQ):
        raise Malformed("seq", "seq is required: an integer from 0 to 2^63-1")
    observed_at = raw.get("observed_at")
    observed = _parse_timestamp(observed_at) if isinstance(observed_at, str) else _NOT_RFC3339
    if observed is _NOT_RFC3339:
        raise Malformed("observed_at", "observed_at is required: RFC 3339 with an offset, e.g. 2026-11-23T08:00:00Z")
    if observed is _NOT_A_DATE:
        raise Malformed("observed_at", f"observed_at {observed_at!r} is not a valid date and time")
    metrics = raw.get("metrics")
    if not isinstance(metrics, dict) or not 1 <= len(metrics) <= MAX_METRICS:
        raise Malformed("metrics", f"metrics is required: an object of 1 to {MAX_METRICS} name: number pairs")
    values: dict[str, float] = {}
    for name, value in metrics.items():
        if type(value) is float:  # the common case, exact: JSON numbers parse to float or int
            values[name] = value
        elif _is_number(value):
            values[name] = _to_float(value)
        else:
            raise Malformed(f"metrics.{name}", f"metric {name!r} must be a JSON number")
    return ReadingShape(sensor_id, seq, observed[0], values, *observed[1:])


def _to_float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer beyond float range: as infinite as it gets, refused as OUT_OF_RANGE later
        return float("inf") if value > 0 else float("-inf")


SURROGATE_DETAIL = "contains a lone UTF-16 surrogate escape (e.g. \\ud800): not valid Unicode text"


def has_surrogate(text: str) -> bool:
    """True when `text` holds a lone surrogate (only the standard library's JSON parser lets those through)."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def printable(text: str) -> str:
    """`text` with lone surrogates written as backslash escapes, so it can travel as UTF-8 / JSON."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8") if has_surrogate(text) else text


def surrogate_field(value: Any, path: str = "") -> str | None:
    """The path (as Malformed names fields: `metrics.name`, `list[0]`) of the first key or string in `value`
    holding a lone surrogate, escaped to be printable; None when there is none."""
    if isinstance(value, str):
        return path if has_surrogate(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            name = str(key)
            where = f"{path}.{printable(name)}" if path else printable(name)
            if has_surrogate(name):
                return where
            found = surrogate_field(item, where)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = surrogate_field(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None
