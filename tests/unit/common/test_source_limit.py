"""The per-source limiter: a burst, then the per-minute rate, with the wait until the next token; bounded memory."""

from __future__ import annotations

import pytest

from services.common.source_limit import SourceLimiter


def test_a_burst_then_the_rate_with_the_wait_until_the_next_token():
    limiter = SourceLimiter(per_minute=6, burst=3)  # one token every 10 s
    assert [limiter.try_acquire("10.0.0.1", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.try_acquire("10.0.0.1", 0.0) == pytest.approx(10.0)
    assert limiter.try_acquire("10.0.0.1", 4.0) == pytest.approx(6.0)
    assert limiter.try_acquire("10.0.0.1", 10.0) == 0.0  # refilled one token
    assert limiter.try_acquire("10.0.0.1", 10.0) > 0
    assert limiter.try_acquire("10.0.0.2", 10.0) == 0.0  # another address has its own bucket


def test_a_refill_never_exceeds_the_burst_and_a_clock_step_back_gives_nothing():
    limiter = SourceLimiter(per_minute=60, burst=2)
    limiter.try_acquire("a", 0.0)
    assert [limiter.try_acquire("a", 3600.0) for _ in range(3)][:2] == [0.0, 0.0]
    assert limiter.try_acquire("a", 3600.0) > 0
    assert limiter.try_acquire("a", 1000.0) > 0  # an earlier timestamp does not refill


def test_memory_is_bounded_by_forgetting_the_least_recently_seen_source():
    limiter = SourceLimiter(per_minute=1, burst=1, max_sources=3)
    for source in ("a", "b", "c"):
        assert limiter.try_acquire(source, 0.0) == 0.0
    assert limiter.try_acquire("a", 1.0) > 0  # "a" is now the most recently seen
    assert limiter.try_acquire("d", 1.0) == 0.0
    assert len(limiter) == 3
    assert limiter.try_acquire("a", 1.0) > 0  # kept
    assert limiter.try_acquire("b", 1.0) == 0.0  # forgotten, so it starts from a full bucket again


def test_nonsense_limits_are_refused():
    with pytest.raises(ValueError):
        SourceLimiter(per_minute=0, burst=1)
