"""Kill-one-member figures: the cumulative series, the rate profile, and the seconds until the full rate held."""

from __future__ import annotations

from citystream.bench.failover import backlog_cleared_s, count_at, cumulative, rates, recovery_s


def steady(rate: int, start: float, end: float, step: float = 0.5, base: int = 0) -> list[tuple[float, int]]:
    return [(start + k * step, base + int(rate * k * step)) for k in range(int((end - start) / step) + 1)]


def test_cumulative_and_count_at():
    series = cumulative([(2.0, 5), (1.0, 10), (3.0, 1)])
    assert series == [(1.0, 10), (2.0, 15), (3.0, 16)]
    assert (count_at(series, 0.5), count_at(series, 2.0), count_at(series, 9.0)) == (0, 15, 16)


def test_no_dip_is_recovered_at_once_and_a_dip_ends_where_its_last_short_window_ends():
    assert recovery_s(steady(1000, 0, 30), kill_at=6, end=30, offered_per_s=1000) == 0.0
    # Half rate for 10 s after the kill, then a catch-up, then the full rate: short until the window ending at 10 s.
    dip = steady(1000, 0, 6) + steady(500, 6.5, 16, base=6000) + steady(1000, 16.5, 30, base=11_000 + 5000)
    assert recovery_s(dip, kill_at=6, end=30, offered_per_s=1000) == 10.0
    assert rates(dip, 0, 12)[:3] == [1000, 1000, 1000] and rates(dip, 6, 16)[1] == 500


def test_still_short_at_the_end_of_the_load_is_not_recovered():
    flat = steady(1000, 0, 6) + [(t, 6000) for t in (10.0, 20.0, 30.0)]
    assert recovery_s(flat, kill_at=6, end=30, offered_per_s=1000) is None


def test_the_backlog_clears_when_it_is_back_within_the_allowance_for_good():
    acked = steady(1000, 0, 30)
    lagging = steady(1000, 0, 6) + steady(500, 6.5, 16, base=6000) + steady(2000, 16.5, 21, base=11_000)
    lagging += steady(1000, 21.5, 30, base=count_at(acked, 21.5))
    assert backlog_cleared_s(acked, acked, kill_at=6, end=30, allowance=2000) == 0.0
    # 500 short a second from 6 s (5250 behind at 16 s); from 16.5 s 1000/s more than offered: 22000 - 1000 t
    # behind, within the allowance from 20 s on.
    assert backlog_cleared_s(acked, lagging, kill_at=6, end=30, allowance=2000) == 14.0
    assert backlog_cleared_s(acked, lagging[:30], kill_at=6, end=30, allowance=2000) is None
