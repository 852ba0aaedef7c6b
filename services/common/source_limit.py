"""Per-source (client address) token buckets with bounded memory, against floods of anonymous requests (pure: the
caller passes the clock). Used by the HTTP ingest (failed credentials) and the register (public removal requests)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated_at_s: float


class SourceLimiter:
    """Up to `burst` requests at once per source, refilled at `per_minute / 60` per second.

    At most `max_sources` buckets are kept: the least recently seen source is forgotten first, so a flood from many
    addresses costs bounded memory (a forgotten source starts again from a full bucket, which only the sources
    that stopped sending can gain from).
    """

    def __init__(self, per_minute: int, burst: int, max_sources: int = 100_000) -> None:
        if per_minute < 1 or burst < 1 or max_sources < 1:
            raise ValueError("per_minute, burst and max_sources must be at least 1")
        self.per_minute, self.burst, self.max_sources = per_minute, burst, max_sources
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def try_acquire(self, source: str, now_s: float) -> float:
        """Take one token for `source`. Returns 0.0 when taken, else the seconds until one is available."""
        bucket = self._buckets.get(source)
        if bucket is None:
            bucket = self._buckets[source] = _Bucket(float(self.burst), now_s)
            if len(self._buckets) > self.max_sources:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(source)
        refill_per_s = self.per_minute / 60.0
        bucket.tokens = min(float(self.burst), bucket.tokens + max(0.0, now_s - bucket.updated_at_s) * refill_per_s)
        bucket.updated_at_s = max(bucket.updated_at_s, now_s)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / refill_per_s
