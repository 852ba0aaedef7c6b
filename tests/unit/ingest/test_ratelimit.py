"""The per-sensor token bucket: a minute's allowance, refilled over a minute; after a rebalance a sensor's new
bucket starts with a tenth of it, so two gates that owned its partition one after the other grant one quota and a
tenth, not two."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition

from services.ingest.gate_loop import LimiterFollowsPartitions
from services.ingest.ratelimit import RateLimiter


def granted(limiter: RateLimiter, sensor: str, rate: int, attempts: int, now_s: float) -> int:
    return sum(limiter.try_acquire(sensor, rate, now_s) == 0.0 for _ in range(attempts))


def test_a_new_bucket_grants_a_minutes_allowance_then_the_refill():
    limiter = RateLimiter()
    assert granted(limiter, "s", 60, 100, 1000.0) == 60
    assert limiter.try_acquire("s", 60, 1000.0) == 1.0  # one token a second
    assert granted(limiter, "s", 60, 100, 1010.0) == 10


def test_after_a_rebalance_a_new_bucket_starts_with_a_tenth_for_a_minute():
    old_owner, new_owner = RateLimiter(), RateLimiter()
    assert granted(old_owner, "s", 60, 100, 1000.0) == 60
    new_owner.after_rebalance(1005.0)  # the partition moved here five seconds later
    # A tenth at once, then the refill: over the old owner's minute the sensor got 60 + 6 + 5, not 120 + 5.
    assert granted(new_owner, "s", 60, 100, 1005.0) == 6
    assert granted(new_owner, "s", 60, 100, 1010.0) == 5
    assert granted(new_owner, "slow", 5, 100, 1010.0) == 1  # at least one token
    # A sensor first seen once the minute is over starts full again.
    assert granted(new_owner, "t", 60, 100, 1065.0) == 60


def test_a_rebalance_drops_the_buckets_the_gate_held():
    limiter = RateLimiter()
    assert granted(limiter, "s", 60, 30, 1000.0) == 30  # 30 tokens left here; meanwhile another gate owned it
    limiter.after_rebalance(1001.0)
    assert granted(limiter, "s", 60, 100, 1001.0) == 6


def test_the_listener_restarts_the_limiter_only_when_the_partitions_changed():
    limiter, clock = RateLimiter(), iter([1000.0, 2000.0])
    listener = LimiterFollowsPartitions(limiter, clock=lambda: next(clock))
    held = {TopicPartition("raw", 0), TopicPartition("raw", 1)}
    asyncio.run(listener.on_partitions_assigned(held))
    assert granted(limiter, "s", 60, 100, 1000.0) == 6  # cautious after the first assignment too
    assert granted(limiter, "s", 60, 100, 1070.0) == 60  # refilled
    asyncio.run(listener.on_partitions_assigned(set(held)))  # the same partitions: nothing moved
    assert granted(limiter, "s", 60, 100, 1070.0) == 0  # the bucket was kept (and is empty)
    asyncio.run(listener.on_partitions_assigned({TopicPartition("raw", 0)}))
    assert granted(limiter, "s", 60, 100, 2000.0) == 6
