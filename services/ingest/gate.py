"""The gate: one pure function deciding admit or reject for a reading, used by the HTTP and the Kafka-native path."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

from schemas.common import Domain
from schemas.register import SensorStatus
from schemas.rejections import RejectionReason as Reason
from services.ingest.credentials import CredentialCheck, PresentedCredential
from services.ingest.reading_shape import (
    MAX_SEQ,
    SURROGATE_DETAIL,
    Malformed,
    check_shape,
    epoch_us,
    printable,
    surrogate_field,
)
from services.ingest.register_state import SensorEntry


class RegisterLookup(Protocol):
    def get(self, sensor_id: str) -> SensorEntry | None: ...

    def sensors_for_key(self, key_id: str) -> Sequence[SensorEntry]: ...


class TokenSource(Protocol):
    """Where a reading's rate token comes from: the process's own buckets (ratelimit.RateLimiter) or tokens leased
    from the shared ones (leases.LeasedRateLimiter). 0.0 when taken, else the seconds to wait."""

    def try_acquire(self, sensor_id: str, rate_per_minute: int, now_s: float) -> float: ...


@dataclass(frozen=True, slots=True)
class GateLimits:
    clock_skew: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(days=7)


class GateClock(NamedTuple):
    """`now` and what the gate derives from it, computed once per batch instead of once per reading. The bounds
    are whole microseconds since the epoch, so comparing them is exactly comparing the aware datetimes."""

    now: datetime
    now_s: float  # now.timestamp(), the rate limiter's clock
    latest_us: int  # observed_at beyond this is TIMESTAMP_IN_FUTURE (now + clock_skew)
    earliest_us: int  # observed_at before this is TIMESTAMP_TOO_OLD (now - max_age)
    now_text: str  # now.isoformat(): every admitted reading's received_at

    @classmethod
    def of(cls, now: datetime, limits: GateLimits) -> GateClock:
        now_us = epoch_us(now)
        return cls(now, now.timestamp(), now_us + limits.clock_skew // _ONE_US, now_us - limits.max_age // _ONE_US,
                   now.isoformat())


_ONE_US = timedelta(microseconds=1)


class Admitted(NamedTuple):
    """An admitted reading (immutable; a NamedTuple: built per reading, it costs a third of a frozen dataclass)."""

    sensor_id: str
    seq: int
    observed_at: datetime
    received_at: datetime
    domain: Domain
    register_version: int
    metrics: dict[str, float]
    # The two instants as the admitted record writes them, formatted once per timestamp text and once per batch
    # rather than once per reading.
    observed_text: str
    received_text: str


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: Reason
    detail: str
    field: str | None = None
    sensor_id: str | None = None
    seq: int | None = None
    retry_after_s: float | None = None  # only for RATE_LIMITED


def _claimed(raw: Any, key: str) -> Any:
    return raw.get(key) if isinstance(raw, dict) else None


def admit(raw: Any, credential: PresentedCredential | CredentialCheck | None, register: RegisterLookup,
          now: datetime, limits: GateLimits, limiter: TokenSource, *,
          sensor_hint: str | None = None, lenient_json: bool = False,
          sent_at_s: float | None = None) -> Admitted | Rejected:
    """Decide one reading. `sensor_hint` is the Kafka record key on the raw topic; `now` must be timezone-aware.
    `sent_at_s` (the raw record's timestamp) is the rate limiter's clock when given, never later than `now`.

    A batch passes one `CredentialCheck(credential, now)` for all its readings (same answers, fewer hash
    compares); a PresentedCredential is checked on its own.
    Checks in order: shape, sensor known, credential, status and window, metrics, timestamp, rate. The rate
    token is only taken for a reading that passed everything else.
    `lenient_json`: `raw` came from the standard library's parser (orjson refused the text), which lets lone
    surrogate escapes through; such a reading is MALFORMED, naming the first field that holds one.
    """
    if isinstance(credential, PresentedCredential):
        credential = CredentialCheck(credential, now)
    return admit_at(raw, credential, register, GateClock.of(now, limits), limits, limiter, sensor_hint=sensor_hint,
                    lenient_json=lenient_json, sent_at_s=sent_at_s)


def admit_at(raw: Any, credential: CredentialCheck | None, register: RegisterLookup, clock: GateClock,
             limits: GateLimits, limiter: TokenSource, *, sensor_hint: str | None = None,
             lenient_json: bool = False, sent_at_s: float | None = None) -> Admitted | Rejected:
    """`admit` with the batch's clock computed once (`GateClock.of(now, limits)`): same answers."""
    now = clock.now
    try:
        if lenient_json and (field := surrogate_field(raw)) is not None:
            raise Malformed(field, f"{field or 'the reading'} {SURROGATE_DETAIL}")
        shape = check_shape(raw)
    except Malformed as problem:
        seq_claimed, sensor_claimed = _claimed(raw, "seq"), _claimed(raw, "sensor_id")
        # a claimed seq is echoed only when it is one (an integer beyond 64 bits cannot travel as JSON)
        seq = (seq_claimed if isinstance(seq_claimed, int) and not isinstance(seq_claimed, bool)
               and 0 <= seq_claimed <= MAX_SEQ else None)
        name = sensor_claimed if isinstance(sensor_claimed, str) else sensor_hint
        return Rejected(Reason.MALFORMED, problem.detail, problem.field, printable(name) if name else name, seq)
    seq = shape.seq
    if shape.sensor_id and sensor_hint and shape.sensor_id != sensor_hint:
        return Rejected(Reason.SENSOR_MISMATCH, f"reading names {shape.sensor_id!r} but the record key is "
                        f"{sensor_hint!r}", "sensor_id", shape.sensor_id, seq)
    found = _resolve_sensor(shape.sensor_id or sensor_hint, credential, register)
    if isinstance(found, Rejected):
        return Rejected(found.reason, found.detail, found.field, found.sensor_id, seq)
    entry = found
    record = entry.record
    sensor_id = record.sensor_id
    if record.status is not SensorStatus.ACTIVE:
        return Rejected(Reason.SENSOR_NOT_ACTIVE, f"sensor is {record.status.value}, only active sensors may "
                        "publish", "sensor_id", sensor_id, seq)
    if record.active_from is not None and now < record.active_from:
        return Rejected(Reason.SENSOR_NOT_ACTIVE, f"sensor may publish from {record.active_from.isoformat()}",
                        "sensor_id", sensor_id, seq)
    if record.active_until is not None and now >= record.active_until:
        return Rejected(Reason.SENSOR_EXPIRED, f"sensor's window ended at {record.active_until.isoformat()}",
                        "sensor_id", sensor_id, seq)
    admissible = entry.admissible
    for name, value in shape.metrics.items():
        bounds = admissible.get(name)
        if bounds is None:
            return Rejected(Reason.UNDECLARED_METRIC, f"metric {name!r} is not declared for this sensor",
                            f"metrics.{name}", sensor_id, seq)
        if not math.isfinite(value):
            return Rejected(Reason.OUT_OF_RANGE, f"{name} {value} is not a finite number", f"metrics.{name}",
                            sensor_id, seq)
        low, high = bounds
        if not low <= value <= high:
            return Rejected(Reason.OUT_OF_RANGE, f"{name} {value} outside declared range [{low}, {high}]",
                            f"metrics.{name}", sensor_id, seq)
    if shape.observed_us > clock.latest_us:
        return Rejected(Reason.TIMESTAMP_IN_FUTURE, f"observed_at is more than {limits.clock_skew} ahead of "
                        "the ingest clock", "observed_at", sensor_id, seq)
    if shape.observed_us < clock.earliest_us:
        return Rejected(Reason.TIMESTAMP_TOO_OLD, f"observed_at is older than {limits.max_age}", "observed_at",
                        sensor_id, seq)
    # A backlog (a gate restarted, or partitions taken over) is limited at the pace it was sent, not all at once at
    # the pace it is gated. A sender's own timestamps cannot raise its quota: a bucket's clock only moves forward
    # and never past `now`, so it refills by at most the real time elapsed.
    rate_clock_s = clock.now_s if sent_at_s is None else min(sent_at_s, clock.now_s)
    wait_s = limiter.try_acquire(sensor_id, record.rate_limit_per_minute, rate_clock_s)
    if wait_s > 0:
        return Rejected(Reason.RATE_LIMITED, f"over {record.rate_limit_per_minute} readings per minute",
                        None, sensor_id, seq, retry_after_s=wait_s)
    return Admitted(sensor_id, shape.seq, shape.observed_at, now, record.domain, record.version, shape.metrics,
                    shape.observed_text, clock.now_text)


def _resolve_sensor(claimed: str | None, credential: CredentialCheck | None,
                    register: RegisterLookup) -> SensorEntry | Rejected:
    """The sensor the reading is for, given the credential: by name (gateway or check) or from a sensor key."""
    if claimed is not None:
        entry = register.get(claimed)
        if entry is None:
            return Rejected(Reason.UNKNOWN_SENSOR, f"sensor {claimed!r} is not in the register", "sensor_id", claimed)
        if credential is not None and _accepts_any(credential, entry.credentials_for(credential.key_id)):
            return entry
        if credential is not None and _valid_elsewhere(credential, register):
            return Rejected(Reason.SENSOR_MISMATCH, f"the credential may not publish for {claimed!r}",
                            "sensor_id", claimed)
        return Rejected(Reason.BAD_CREDENTIALS, "missing, unknown, wrong or expired credential", "credential",
                        claimed)
    if credential is None:
        return Rejected(Reason.BAD_CREDENTIALS, "missing or malformed credential", "credential")
    holders = [entry for entry in register.sensors_for_key(credential.key_id)
               if any(credential.accepts(stored) for stored in entry.credentials_for(credential.key_id))]
    if not holders:
        return Rejected(Reason.BAD_CREDENTIALS, "unknown, wrong or expired credential", "credential")
    if len(holders) > 1:
        return Rejected(Reason.MALFORMED, "sensor_id is required with a gateway credential", "sensor_id")
    return holders[0]


def _accepts_any(credential: CredentialCheck, stored: tuple) -> bool:
    # A plain loop: per reading, any() over a generator costs twice as much.
    for candidate in stored:
        if credential.accepts(candidate):
            return True
    return False


def _valid_elsewhere(credential: CredentialCheck, register: RegisterLookup) -> bool:
    return any(credential.accepts(stored)
               for entry in register.sensors_for_key(credential.key_id)
               for stored in entry.credentials_for(credential.key_id))
