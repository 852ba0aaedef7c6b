"""Kill-one-member runs: the stored count sampled over time, how long after a kill the rate was back to full, and
which process holds a port's connections (to pick the member that carries load)."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import time
from dataclasses import dataclass, field
from typing import Self

import asyncpg
import psutil

from citystream.bench.accounting import count_range


def cumulative(increments: list[tuple[float, int]]) -> list[tuple[float, int]]:
    """(time, n) events → (time, total so far), in time order."""
    ordered = sorted(increments)
    return list(zip((t for t, _ in ordered), itertools.accumulate(n for _, n in ordered)))


def count_at(series: list[tuple[float, int]], at: float) -> int:
    """The cumulative count at time `at` (the last sample at or before it; 0 before the first)."""
    index = bisect.bisect_right([t for t, _ in series], at)
    return series[index - 1][1] if index else 0


def recovery_s(series: list[tuple[float, int]], kill_at: float, end: float, offered_per_s: float, *,
               window_s: float = 2.0, share: float = 0.9) -> float | None:
    """Seconds from the kill to the end of the last `window_s` window (laid from the kill on, up to `end`) whose
    rate was below `share` × the offered rate: from then on the full rate held. 0.0 when no window fell short;
    None when the last window before `end` still did (not recovered while the load ran)."""
    windows = int((end - kill_at) // window_s)
    short_until = 0.0
    for k in range(windows):
        low, high = kill_at + k * window_s, kill_at + (k + 1) * window_s
        rate = (count_at(series, high) - count_at(series, low)) / window_s
        if rate < share * offered_per_s:
            if k == windows - 1:
                return None
            short_until = high - kill_at
    return short_until


def backlog_cleared_s(acked: list[tuple[float, int]], stored: list[tuple[float, int]], kill_at: float, end: float,
                      allowance: int) -> float | None:
    """Seconds from the kill until the backlog (acknowledged but not yet stored) came back within `allowance` and
    stayed there up to `end`: the survivor had taken over and caught up, so the full rate was back. Judged at the
    stored samples; 0.0 when it never left the allowance, None when it was still beyond it at `end`."""
    samples = [(t, count_at(acked, t) - n) for t, n in stored if kill_at <= t <= end]
    if not samples or samples[-1][1] > allowance:
        return None
    beyond = [t for t, backlog in samples if backlog > allowance]
    if not beyond:
        return 0.0
    return next(t for t, _ in samples if t > beyond[-1]) - kill_at


def rates(series: list[tuple[float, int]], start: float, end: float, window_s: float = 2.0) -> list[int]:
    """Readings per second in consecutive `window_s` windows from `start` up to `end` (a run's profile)."""
    return [round((count_at(series, start + (k + 1) * window_s) - count_at(series, start + k * window_s)) / window_s)
            for k in range(int((end - start) // window_s))]


@dataclass
class StoredTimeline:
    """Samples how many readings of a seq range are stored, every `every_s`, until stopped."""

    database_url: str
    seq_low: int
    seq_high: int
    every_s: float = 0.5
    series: list[tuple[float, int]] = field(default_factory=list)
    _task: asyncio.Task | None = None

    async def __aenter__(self) -> Self:
        connection = await asyncpg.connect(self.database_url, timeout=10)

        async def sample() -> None:
            try:
                while True:
                    self.series.append((time.time(), await count_range(connection, self.seq_low, self.seq_high)))
                    await asyncio.sleep(self.every_s)
            finally:
                await connection.close()

        self._task = asyncio.create_task(sample())
        return self

    async def __aexit__(self, *exc) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def connections_held(pid: int, port: int) -> int:
    """Established TCP connections the process accepted on `port` (which of several processes sharing a port
    carries the load)."""
    return sum(1 for c in psutil.Process(pid).net_connections(kind="tcp")
               if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port)
