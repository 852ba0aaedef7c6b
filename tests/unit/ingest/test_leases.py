"""Leased rate limiting (services/ingest/leases.py): processes spend only tokens a shared bucket granted, so over
any number of them a sensor gets one quota; a batch's lacking sensors are leased in one call; leases expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.register import CredentialKind
from schemas.rejections import RejectionReason as Reason
from services.common.errors import DependencyUnavailable
from services.ingest.credentials import parse_bearer
from services.ingest.gate import Admitted, GateLimits, Rejected
from services.ingest.leases import (
    LEASE_TTL_S,
    Demand,
    Grants,
    LeasedRateLimiter,
    gate_batch_leased,
    lease_size,
    wait_for_token_s,
)
from services.ingest.register_state import RegisterState
from tests.support.ingest_factories import new_credential, reading, registration

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class ModelBucket:
    """The shared buckets as quota_store's statement computes them, on a clock the test moves."""

    def __init__(self) -> None:
        self.now_s = START.timestamp()
        self.rows: dict[str, tuple[float, float]] = {}  # sensor -> (tokens, updated_at_s)
        self.calls: list[Demand] = []
        self.down = False

    async def lease(self, demand: Demand) -> Grants:
        self.calls.append(dict(demand))
        if self.down:
            raise DependencyUnavailable("shared rate-limit store not reachable")
        grants = {}
        for sensor_id, (rate, wanted) in demand.items():
            tokens, updated = self.rows.get(sensor_id, (float(rate), self.now_s))
            tokens = min(float(rate), tokens + max(0.0, self.now_s - updated) * rate / 60)
            granted = min(wanted, int(tokens))
            self.rows[sensor_id] = (tokens - granted, self.now_s)
            grants[sensor_id] = (granted, tokens - granted)
        return grants


@pytest.fixture
def fleet():
    key, stored = new_credential(CredentialKind.GATEWAY)
    state = RegisterState()
    for sensor_id, rate in (("quota-60", 60), ("quota-600", 600), ("quota-5", 5)):
        state.put(registration(sensor_id, stored, rate_limit_per_minute=rate))
    return parse_bearer(f"Bearer {key}"), state


async def send(limiter, bucket, fleet, sensor_id: str, count: int, at: datetime, seq: int = 1):
    credential, state = fleet
    readings = [reading(seq + i, at - timedelta(seconds=1), sensor_id) for i in range(count)]
    return await gate_batch_leased(readings, credential, state, at, GateLimits(), limiter, bucket.lease)


def admitted(outcomes) -> int:
    return sum(isinstance(o, Admitted) for o in outcomes)


def test_lease_size_is_a_tenth_of_the_minute_at_least_one():
    assert [lease_size(rate) for rate in (1, 5, 60, 600, 6000)] == [1, 1, 6, 60, 600]
    assert wait_for_token_s(0.5, 60) == 0.5 and wait_for_token_s(2.0, 60) == 0.0


async def test_two_processes_share_one_quota(fleet):
    """150 single-reading requests alternating between two processes within one second: the sensor gets its
    60/min once, less at most a lease left unspent in each process, not 60 from each."""
    bucket = ModelBucket()
    processes = [LeasedRateLimiter(), LeasedRateLimiter()]
    total = 0
    for i in range(150):
        at = START + timedelta(milliseconds=5 * i)
        bucket.now_s = at.timestamp()
        total += admitted(await send(processes[i % 2], bucket, fleet, "quota-60", 1, at, seq=i))
    refill = 150 * 0.005  # under one token refilled over the 0.75 s
    assert 60 - 2 * lease_size(60) <= total <= 60 + refill, total
    # Admitted plus still leased is what the bucket granted: never more than one minute and the refill.
    assert sum(p.leased_tokens("quota-60") for p in processes) + total <= 60 + refill + 1


async def test_a_process_asks_once_per_lease_not_per_reading(fleet):
    bucket, limiter = ModelBucket(), LeasedRateLimiter()
    for i in range(6):
        assert admitted(await send(limiter, bucket, fleet, "quota-60", 1, START, seq=i)) == 1
    assert bucket.calls == [{"quota-60": (60, 6)}]  # one lease of six tokens served six requests


async def test_many_sensors_in_a_batch_are_leased_in_one_call(fleet):
    credential, state = fleet
    bucket, limiter = ModelBucket(), LeasedRateLimiter()
    readings = [reading(i, START - timedelta(seconds=1), sensor)
                for i, sensor in enumerate(["quota-60"] * 10 + ["quota-600"] * 3 + ["quota-5"] * 2)]
    outcomes = await gate_batch_leased(readings, credential, state, START, GateLimits(), limiter, bucket.lease)
    assert len(bucket.calls) == 1
    # A batch needing more than a lease asks for what it needs; a slow sensor asks for one token at least.
    assert bucket.calls[0] == {"quota-60": (60, 10), "quota-600": (600, 60), "quota-5": (5, 2)}
    assert admitted(outcomes) == 15


async def test_over_the_quota_is_rate_limited_with_the_shared_buckets_wait(fleet):
    bucket, limiter = ModelBucket(), LeasedRateLimiter()
    outcomes = await send(limiter, bucket, fleet, "quota-60", 70, START)
    assert admitted(outcomes) == 60
    refused = [o for o in outcomes if isinstance(o, Rejected)]
    assert {o.reason for o in refused} == {Reason.RATE_LIMITED} and len(refused) == 10
    assert all(o.retry_after_s == pytest.approx(1.0) for o in refused)  # one token a second at 60/min
    # Until the shared bucket can hold a token again the process does not ask it: no round trip per refusal.
    calls = len(bucket.calls)
    half = START + timedelta(seconds=0.5)
    bucket.now_s = half.timestamp()
    outcome, = await send(limiter, bucket, fleet, "quota-60", 1, half, seq=100)
    assert outcome.reason is Reason.RATE_LIMITED and outcome.retry_after_s == pytest.approx(0.5)
    assert len(bucket.calls) == calls
    later = START + timedelta(seconds=3)
    bucket.now_s = later.timestamp()
    assert admitted(await send(limiter, bucket, fleet, "quota-60", 5, later, seq=200)) == 3  # 3 s refilled 3


async def test_unspent_leases_expire(fleet):
    bucket, limiter = ModelBucket(), LeasedRateLimiter()
    assert admitted(await send(limiter, bucket, fleet, "quota-60", 1, START)) == 1
    assert limiter.leased_tokens("quota-60") == 5
    later = START + timedelta(seconds=LEASE_TTL_S + 0.1)
    bucket.now_s = later.timestamp()
    assert admitted(await send(limiter, bucket, fleet, "quota-60", 1, later, seq=2)) == 1
    assert len(bucket.calls) == 2  # the five left were not spent after their time: a new lease was taken


async def test_a_failed_lease_admits_nothing_that_needed_it(fleet):
    bucket, limiter = ModelBucket(), LeasedRateLimiter()
    bucket.down = True
    with pytest.raises(DependencyUnavailable):
        await send(limiter, bucket, fleet, "quota-60", 3, START)
    assert limiter.leased_tokens("quota-60") == 0
    bucket.down = False  # back: the next batch leases again (the failed demand was not kept)
    assert admitted(await send(limiter, bucket, fleet, "quota-60", 3, START, seq=10)) == 3
    assert bucket.calls[-1] == {"quota-60": (60, 6)}


async def test_readings_refused_for_other_reasons_take_no_token(fleet):
    credential, state = fleet
    bucket, limiter = ModelBucket(), LeasedRateLimiter()
    bad = reading(1, START + timedelta(hours=1), "quota-60")  # in the future
    outcomes = await gate_batch_leased([bad], credential, state, START, GateLimits(), limiter, bucket.lease)
    assert outcomes[0].reason is Reason.TIMESTAMP_IN_FUTURE and bucket.calls == []
