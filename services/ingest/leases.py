"""One sensor quota shared by every ingest-http process: local buckets filled only by tokens leased from the shared
per-sensor bucket (services/ingest/quota_store.py). Pure apart from the lease call the caller passes in.

Why leases: asking the shared bucket once per reading would put a database round trip on every request. A process
instead takes a few tokens at a time — a tenth of the sensor's minute allowance, at least one, or as many as one
batch needs — and spends them locally. Every admitted reading spent a token the shared bucket granted, so over all
processes and pods a sensor gets at most what one bucket grants: one minute's allowance, then its rate. Tokens
leased but not spent are lost with the lease after `LEASE_TTL_S` (never handed back): the price is that a sensor
whose requests spread over N processes may be refused up to N − 1 leases' worth of its quota while those leases wait
unspent elsewhere, never that it gets more than its quota.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.rejections import RejectionReason as Reason
from services.ingest.credentials import CredentialCheck, PresentedCredential
from services.ingest.gate import Admitted, GateClock, GateLimits, RegisterLookup, Rejected, admit_at

WINDOW_S = 60.0  # the shared bucket holds one minute's allowance and refills it in one minute
LEASE_FRACTION = 10  # a lease is a tenth of the minute's allowance (six seconds' worth)
# A lease unspent this long is dropped: its tokens were granted, so dropping them can only under-admit.
LEASE_TTL_S = 6.0

# sensor id -> (rate per minute, tokens wanted)
Demand = dict[str, tuple[int, int]]
# sensor id -> (tokens granted, tokens left in the shared bucket after the grant)
Grants = dict[str, tuple[int, float]]
LeaseCall = Callable[[Demand], Awaitable[Grants]]


def lease_size(rate_per_minute: int) -> int:
    """Tokens a process asks for when its local lease of a sensor runs out."""
    return max(1, rate_per_minute // LEASE_FRACTION)


def wait_for_token_s(tokens_left: float, rate_per_minute: int) -> float:
    """Seconds until the shared bucket, holding `tokens_left`, has one whole token (refill only; no other process
    can add any, so nobody can be granted one sooner)."""
    return max(0.0, 1.0 - tokens_left) * WINDOW_S / rate_per_minute


@dataclass(slots=True)
class _Lease:
    tokens: int
    rate_per_minute: int
    expires_at_s: float


class LeasedRateLimiter:
    """`try_acquire` as RateLimiter's, spending leased tokens only. A reading that finds no leased token is refused
    provisionally and counted as demand (`take_demand`); the caller leases for the demand and gates it again."""

    def __init__(self, ttl_s: float = LEASE_TTL_S) -> None:
        self._ttl_s = ttl_s
        self._leases: dict[str, _Lease] = {}
        # sensor id -> (until when the shared bucket has no whole token, the rate that was computed at)
        self._empty_until: dict[str, tuple[float, int]] = {}
        self._demand: Demand = {}

    def try_acquire(self, sensor_id: str, rate_per_minute: int, now_s: float) -> float:
        """Take one leased token: 0.0 when taken, else the seconds to wait (provisional when it was demand)."""
        lease = self._leases.get(sensor_id)
        if lease is not None:
            if lease.tokens >= 1 and now_s < lease.expires_at_s and lease.rate_per_minute == rate_per_minute:
                lease.tokens -= 1
                return 0.0
            del self._leases[sensor_id]  # spent, expired, or the register changed the sensor's limit
        empty = self._empty_until.get(sensor_id)
        if empty is not None:
            until_s, rate = empty
            if now_s < until_s and rate == rate_per_minute:
                return until_s - now_s  # the shared bucket cannot grant yet: no round trip to ask it
            del self._empty_until[sensor_id]
        _, wanted = self._demand.get(sensor_id, (rate_per_minute, 0))
        self._demand[sensor_id] = (rate_per_minute, wanted + 1)
        return WINDOW_S / rate_per_minute

    def take_demand(self) -> Demand:
        """What the readings gated since the last call lacked, per sensor, with each wish raised to a whole lease;
        and forget it. Called right after a synchronous pass over a batch, so concurrent batches never mix."""
        demand, self._demand = self._demand, {}
        return {sensor_id: (rate, max(wanted, lease_size(rate))) for sensor_id, (rate, wanted) in demand.items()}

    def add_grants(self, demand: Demand, grants: Grants, now_s: float) -> None:
        """Record what the shared bucket granted: tokens for the local lease, and for a sensor granted less than it
        asked, when the shared bucket will have a token again."""
        for sensor_id, (rate, wanted) in demand.items():
            granted, tokens_left = grants.get(sensor_id, (0, 0.0))
            if granted > 0:
                lease = self._leases.get(sensor_id)
                if lease is None or lease.rate_per_minute != rate:
                    lease = self._leases[sensor_id] = _Lease(0, rate, 0.0)
                lease.tokens += granted
                lease.expires_at_s = now_s + self._ttl_s
            if granted < wanted:
                self._empty_until[sensor_id] = (now_s + wait_for_token_s(tokens_left, rate), rate)

    def leased_tokens(self, sensor_id: str) -> int:
        lease = self._leases.get(sensor_id)
        return 0 if lease is None else lease.tokens


async def gate_batch_leased(readings: list[Any], credential: PresentedCredential | None, register: RegisterLookup,
                            now: datetime, limits: GateLimits, limiter: LeasedRateLimiter, lease: LeaseCall, *,
                            lenient_json: bool = False) -> list[Admitted | Rejected]:
    """`gate_batch` with a shared quota: gate every reading on the leased tokens; if some lacked one, lease for all
    those sensors in one call and gate those readings again. Raises what `lease` raises (DependencyUnavailable):
    a reading is never admitted without a token the shared bucket granted."""
    check = CredentialCheck(credential, now) if credential is not None else None
    clock = GateClock.of(now, limits)
    outcomes = [admit_at(raw, check, register, clock, limits, limiter, lenient_json=lenient_json) for raw in readings]
    demand = limiter.take_demand()
    if not demand:
        return outcomes
    grants = await lease(demand)
    limiter.add_grants(demand, grants, clock.now_s)
    for index, outcome in enumerate(outcomes):
        if (isinstance(outcome, Rejected) and outcome.reason is Reason.RATE_LIMITED and outcome.sensor_id in demand):
            outcomes[index] = admit_at(readings[index], check, register, clock, limits, limiter,
                                       lenient_json=lenient_json)
    limiter.take_demand()  # a reading still without a token is refused; the next batch asks again
    return outcomes
