"""Retention planning (pure): each sensor's cutoff from its declared retention_days, and the one instant before
which every row of every sensor has expired (so whole chunks may be dropped)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetainedTable:
    """A hypertable whose rows belong to one sensor each and expire with that sensor's retention."""

    name: str
    time_column: str


# Fixed list: table and column names are interpolated into SQL, never taken from input.
RETAINED_TABLES = (
    RetainedTable("readings", "observed_at"),
    RetainedTable("rejections", "received_at"),
    RetainedTable("rollups_1m", "window_start"),
)


@dataclass(frozen=True)
class RetentionPlan:
    now: datetime
    sensor_ids: tuple[str, ...]
    cutoffs: tuple[datetime, ...]  # same order as sensor_ids: rows strictly older than the cutoff expire
    unregistered_cutoff: datetime  # rows of sensor ids not (or no longer) in the register, or of no sensor at all
    drop_before: datetime  # earliest cutoff: a chunk ending at or before it holds only expired rows
    delete_before: datetime  # latest cutoff: no row at or after it expires this run (bounds the row deletes)


def plan_retention(retention_days: Mapping[str, int], now: datetime, unregistered_days: int) -> RetentionPlan:
    """Cutoff per sensor = now - retention_days. Rows whose sensor is unknown to the register (unknown-sensor
    rejections, readings of a deleted sensor) have no declaration: they keep `unregistered_days`."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if unregistered_days < 0 or any(days < 0 for days in retention_days.values()):
        raise ValueError("retention days must not be negative")
    sensor_ids = tuple(sorted(retention_days))
    cutoffs = tuple(now - timedelta(days=retention_days[sensor_id]) for sensor_id in sensor_ids)
    unregistered_cutoff = now - timedelta(days=unregistered_days)
    every_cutoff = (*cutoffs, unregistered_cutoff)
    return RetentionPlan(now, sensor_ids, cutoffs, unregistered_cutoff, min(every_cutoff), max(every_cutoff))


@dataclass(frozen=True)
class Chunk:
    name: str  # schema-qualified
    range_start: datetime
    range_end: datetime  # exclusive


def droppable_chunks(chunks: Iterable[Chunk], drop_before: datetime) -> list[Chunk]:
    """Chunks all of whose rows are past every sensor's retention (the range end is exclusive)."""
    return sorted((chunk for chunk in chunks if chunk.range_end <= drop_before), key=lambda chunk: chunk.range_end)
