"""Per-sensor token buckets for the gate's rate limit (pure: the caller passes the clock).

Where a sensor's quota lives: raw records are keyed by sensor id, so one sensor's readings are on one partition of
`citystream.readings.raw.v1`, consumed by one member of the Kafka-native gate group; its bucket is in that member
alone, however many gates run. When partitions move (a gate joins, leaves or dies) the new owner cannot know how
much of the minute's allowance the old one granted, so `after_rebalance` makes buckets created in the next minute
start with a tenth of it (six seconds' worth, at least one token) instead of all of it: across a move a sensor gets
at most its quota plus that tenth, never a second quota, and loses most of its burst allowance for that minute. The Kafka gate runs the buckets on the raw records' timestamps (never later than
its own clock), so the backlog the new owner finds is limited at the pace it was sent, not refused as one burst.
"""

from __future__ import annotations

from dataclasses import dataclass

WINDOW_S = 60.0  # a bucket holds one minute's allowance and refills it in one minute
# After a rebalance a new bucket holds this many seconds' allowance: enough for a sensor's readings sent in the same
# instant (a gateway's backlog) at ordinary limits, small against the minute the previous owner may have granted.
CAUTIOUS_START_S = 6.0


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated_at_s: float
    rate_per_minute: int


class RateLimiter:
    """One bucket per sensor holding up to a minute's allowance, refilled at `rate_per_minute / 60` per second."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._cautious_until_s = float("-inf")

    def try_acquire(self, sensor_id: str, rate_per_minute: int, now_s: float) -> float:
        """Take one token. Returns 0.0 when taken, else the seconds until one is available."""
        bucket = self._buckets.get(sensor_id)
        capacity = float(rate_per_minute)
        if bucket is None or bucket.rate_per_minute != rate_per_minute:
            # A new sensor, or its limit changed in the register: start from a full bucket at the new rate — or
            # from a tenth of it within a minute of a rebalance (another gate may have spent this minute's allowance).
            start = capacity
            if now_s < self._cautious_until_s:
                start = max(1.0, capacity * CAUTIOUS_START_S / WINDOW_S)
            bucket = self._buckets[sensor_id] = _Bucket(start, now_s, rate_per_minute)
        refill_per_s = rate_per_minute / WINDOW_S
        elapsed_s = max(0.0, now_s - bucket.updated_at_s)
        bucket.tokens = min(capacity, bucket.tokens + elapsed_s * refill_per_s)
        bucket.updated_at_s = max(bucket.updated_at_s, now_s)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / refill_per_s

    def after_rebalance(self, now_s: float) -> None:
        """Partitions moved: every bucket is dropped (a sensor whose partition left and came back was meanwhile
        limited elsewhere) and, for one minute, new buckets start with a tenth of their allowance."""
        self._buckets.clear()
        self._cautious_until_s = now_s + WINDOW_S

    def forget(self, sensor_id: str) -> None:
        self._buckets.pop(sensor_id, None)
