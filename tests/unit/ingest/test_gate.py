"""The gate decides each rejection path with its reason code and field; admitted readings match the contract."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.readings import READING_MODEL_BY_DOMAIN, RawReading
from schemas.register import CredentialKind, SensorStatus
from schemas.rejections import RejectionReason as R
from services.ingest.credentials import parse_bearer, parse_credential
from services.ingest.gate import Admitted, GateLimits, Rejected, admit
from services.ingest.ratelimit import RateLimiter
from services.ingest.records import admitted_record
from services.ingest.register_state import RegisterState
from services.common import jsonwire
from tests.support.ingest_factories import new_credential, reading, registration

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
LIMITS = GateLimits()


@pytest.fixture
def world():
    state = RegisterState()
    sensor_key, sensor_hash = new_credential()
    gateway_key, gateway_hash = new_credential(CredentialKind.GATEWAY)
    state.put(registration("traffic-a-001", sensor_hash, gateway_hash))
    state.put(registration("traffic-b-002", gateway_hash))
    return state, parse_credential(sensor_key), parse_credential(gateway_key), sensor_key


def run(state, credential, raw, *, now=NOW, hint=None, limiter=None):
    return admit(raw, credential, state, now, LIMITS, limiter or RateLimiter(), sensor_hint=hint)


def test_a_valid_reading_is_admitted_and_matches_the_domain_contract(world):
    state, credential, _, _ = world
    outcome = run(state, credential, reading(7, NOW - timedelta(seconds=5), intensity=3, averageVehicleSpeed=40.5))
    assert isinstance(outcome, Admitted)
    assert (outcome.sensor_id, outcome.seq, outcome.register_version) == ("traffic-a-001", 7, 1)
    wire = READING_MODEL_BY_DOMAIN[outcome.domain].model_validate(jsonwire.loads(admitted_record(outcome, "t").value))
    assert wire.metrics.averageVehicleSpeed == 40.5 and wire.received_at == NOW


@pytest.mark.parametrize(("mutate", "reason", "field"), [
    (lambda r: r | {"received_at": "2026-01-01T00:00:00Z"}, R.MALFORMED, "received_at"),
    (lambda r: r | {"seq": "7"}, R.MALFORMED, "seq"),
    (lambda r: r | {"seq": -1}, R.MALFORMED, "seq"),
    (lambda r: r | {"observed_at": "2026-03-10T12:00:00"}, R.MALFORMED, "observed_at"),
    (lambda r: r | {"metrics": {}}, R.MALFORMED, "metrics"),
    (lambda r: r | {"metrics": {"intensity": "3"}}, R.MALFORMED, "metrics.intensity"),
    (lambda r: r | {"sensor_id": "traffic-zz-404"}, R.UNKNOWN_SENSOR, "sensor_id"),
    (lambda r: r | {"sensor_id": "traffic-b-002"}, R.SENSOR_MISMATCH, "sensor_id"),
    (lambda r: r | {"metrics": {"voltage": 230.0}}, R.UNDECLARED_METRIC, "metrics.voltage"),
    (lambda r: r | {"metrics": {"averageVehicleSpeed": 412.0}}, R.OUT_OF_RANGE, "metrics.averageVehicleSpeed"),
    (lambda r: r | {"metrics": {"intensity": float("nan")}}, R.OUT_OF_RANGE, "metrics.intensity"),
    (lambda r: r | {"metrics": {"intensity": float("inf")}}, R.OUT_OF_RANGE, "metrics.intensity"),
    (lambda r: r | {"observed_at": (NOW + timedelta(minutes=6)).isoformat()}, R.TIMESTAMP_IN_FUTURE, "observed_at"),
    (lambda r: r | {"observed_at": (NOW - timedelta(days=8)).isoformat()}, R.TIMESTAMP_TOO_OLD, "observed_at"),
])
def test_each_bad_reading_gets_its_reason_and_field(world, mutate, reason, field):
    state, credential, _, _ = world
    outcome = run(state, credential, mutate(reading(1, NOW)))
    assert isinstance(outcome, Rejected)
    assert (outcome.reason, outcome.field) == (reason, field)


def test_credentials_wrong_missing_expired_and_gateway(world):
    state, credential, gateway, sensor_key = world
    key_id = sensor_key.split(".")[0]
    assert run(state, parse_credential(f"{key_id}.wrong-secret"), reading(1, NOW)).reason is R.BAD_CREDENTIALS
    assert run(state, None, reading(1, NOW)).reason is R.BAD_CREDENTIALS
    assert run(state, parse_bearer("Basic abc"), reading(1, NOW)).reason is R.BAD_CREDENTIALS
    expired_key, expired_hash = new_credential(not_after=NOW - timedelta(seconds=1))
    state.put(registration("traffic-c-003", expired_hash))
    assert run(state, parse_credential(expired_key), reading(1, NOW)).reason is R.BAD_CREDENTIALS
    assert isinstance(run(state, gateway, reading(1, NOW, sensor_id="traffic-b-002")), Admitted)
    assert run(state, gateway, reading(1, NOW)).reason is R.MALFORMED  # a gateway must name the sensor


def test_status_window_and_versions(world):
    state, credential, _, sensor_key = world
    stored = state.get("traffic-a-001").record.credentials
    state.put(registration("traffic-a-001", *stored, version=2, status=SensorStatus.SUSPENDED))
    assert run(state, credential, reading(1, NOW)).reason is R.SENSOR_NOT_ACTIVE
    state.put(registration("traffic-a-001", *stored, version=1))  # older version: ignored
    assert run(state, credential, reading(1, NOW)).reason is R.SENSOR_NOT_ACTIVE
    state.put(registration("traffic-a-001", *stored, version=3, active_until=NOW))
    assert run(state, credential, reading(1, NOW)).reason is R.SENSOR_EXPIRED
    state.put(registration("traffic-a-001", *stored, version=4, active_from=NOW + timedelta(hours=1)))
    assert run(state, credential, reading(1, NOW)).reason is R.SENSOR_NOT_ACTIVE
    assert state.apply_record(b"traffic-a-001", None)  # tombstone
    assert run(state, credential, reading(1, NOW)).reason is R.BAD_CREDENTIALS
    assert run(state, credential, reading(1, NOW, sensor_id="traffic-a-001")).reason is R.UNKNOWN_SENSOR


def test_rate_limit_is_per_sensor_and_refills(world):
    state, credential, gateway, _ = world
    stored = state.get("traffic-a-001").record.credentials
    state.put(registration("traffic-a-001", *stored, version=2, rate_limit_per_minute=3))
    limiter = RateLimiter()
    results = [run(state, credential, reading(n, NOW), limiter=limiter) for n in range(5)]
    assert [type(r).__name__ for r in results] == ["Admitted"] * 3 + ["Rejected"] * 2
    assert results[3].reason is R.RATE_LIMITED and results[3].retry_after_s == pytest.approx(20.0)
    other = run(state, gateway, reading(9, NOW, sensor_id="traffic-b-002"), limiter=limiter)
    assert isinstance(other, Admitted)
    later = run(state, credential, reading(6, NOW), now=NOW + timedelta(seconds=20), limiter=limiter)
    assert isinstance(later, Admitted)


def test_a_backlog_is_limited_at_the_pace_it_was_sent_and_timestamps_cannot_raise_the_quota(world):
    state, credential, _, _ = world
    stored = state.get("traffic-a-001").record.credentials
    state.put(registration("traffic-a-001", *stored, version=2, rate_limit_per_minute=60))
    limiter = RateLimiter()
    limiter.after_rebalance(NOW.timestamp() - 30)  # taken over: new buckets start with a tenth (6 tokens)

    def gated(seq: int, sent_at: datetime, now: datetime = NOW) -> bool:
        return isinstance(admit(reading(seq, sent_at - timedelta(seconds=1)), credential, state, now, LIMITS,
                                limiter, sent_at_s=sent_at.timestamp()), Admitted)

    # Twenty readings sent one a second (the allowed pace), gated all at once: all admitted, though more than the
    # six tokens the bucket started with.
    base = NOW - timedelta(seconds=25)
    assert all(gated(n, base + timedelta(seconds=n)) for n in range(20))
    # Timestamps later than the gate's clock count as now; spreading them cannot buy more than what was left (6 - 20
    # + 19 = 5) plus the real time since the bucket's last reading (25 - 19 = 6 s, one token a second).
    spread = [gated(100 + n, NOW + timedelta(seconds=n)) for n in range(30)]
    assert sum(spread) == 11


def test_kafka_key_must_agree_with_the_reading(world):
    state, credential, _, _ = world
    outcome = run(state, credential, reading(1, NOW, sensor_id="traffic-a-001"), hint="traffic-b-002")
    assert outcome.reason is R.SENSOR_MISMATCH
    assert isinstance(run(state, credential, reading(1, NOW), hint="traffic-a-001"), Admitted)


def test_hand_check_agrees_with_the_raw_reading_contract(world):
    state, credential, _, _ = world
    raw = reading(3, NOW, sensor_id="traffic-a-001", intensity=1)
    assert isinstance(run(state, credential, raw), Admitted)
    RawReading.model_validate(raw)  # what the gate admits, the contract admits
