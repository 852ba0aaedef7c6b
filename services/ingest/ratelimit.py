"""Per-sensor token buckets for the gate's rate limit (pure: the caller passes the clock)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated_at_s: float
    rate_per_minute: int


class RateLimiter:
    """One bucket per sensor holding up to a minute's allowance, refilled at `rate_per_minute / 60` per second."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}

    def try_acquire(self, sensor_id: str, rate_per_minute: int, now_s: float) -> float:
        """Take one token. Returns 0.0 when taken, else the seconds until one is available."""
        bucket = self._buckets.get(sensor_id)
        capacity = float(rate_per_minute)
        if bucket is None or bucket.rate_per_minute != rate_per_minute:
            # A new sensor, or its limit changed in the register: start from a full bucket at the new rate.
            bucket = self._buckets[sensor_id] = _Bucket(capacity, now_s, rate_per_minute)
        refill_per_s = rate_per_minute / 60.0
        elapsed_s = max(0.0, now_s - bucket.updated_at_s)
        bucket.tokens = min(capacity, bucket.tokens + elapsed_s * refill_per_s)
        bucket.updated_at_s = max(bucket.updated_at_s, now_s)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / refill_per_s

    def forget(self, sensor_id: str) -> None:
        self._buckets.pop(sensor_id, None)
