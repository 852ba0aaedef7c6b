"""The batch fast path (one GateClock, one CredentialCheck, the register's cached key index) answers exactly as the
reading-by-reading gate and as plain datetime comparisons, for tricky inputs and at the window's edges."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.rejections import RejectionReason
from services.ingest.batch import gate_batch
from services.ingest.credentials import parse_credential
from services.ingest.gate import Admitted, GateClock, GateLimits, Rejected, admit
from services.ingest.ratelimit import RateLimiter
from services.ingest.reading_shape import epoch_us
from services.ingest.records import admitted_record
from services.ingest.register_state import RegisterState
from tests.support.ingest_factories import new_credential, registration
from tests.unit.ingest.test_gate_properties import near_valid

NOW = datetime(2026, 3, 10, 12, 0, 0, 123456, tzinfo=UTC)
LIMITS = GateLimits(clock_skew=timedelta(minutes=5), max_age=timedelta(days=7))
GATEWAY_KEY, GATEWAY_HASH = new_credential()
OTHER_KEY, OTHER_HASH = new_credential()
SENSORS = ("traffic-p-001", "traffic-p-002")
STAMP = (NOW - timedelta(seconds=1)).isoformat()

TRICKY = [
    {"sensor_id": SENSORS[0], "seq": 1, "observed_at": STAMP, "metrics": {"intensity": 12.0}},
    {"sensor_id": SENSORS[1], "seq": 2, "observed_at": STAMP, "metrics": {"intensity": 3}},
    {"sensor_id": SENSORS[0], "seq": 3, "observed_at": STAMP, "metrics": {"intensity": float("nan")}},
    {"sensor_id": SENSORS[0], "seq": 4, "observed_at": STAMP, "metrics": {"intensity": float("inf")}},
    {"sensor_id": SENSORS[0], "seq": 5, "observed_at": STAMP, "metrics": {"intensity": -float("inf")}},
    {"sensor_id": SENSORS[0], "seq": 6, "observed_at": STAMP, "metrics": {"intensity": 10**400}},
    {"sensor_id": SENSORS[0], "seq": 7, "observed_at": STAMP, "metrics": {"intensity": 1e308}},
    {"sensor_id": SENSORS[0], "seq": 8, "observed_at": STAMP, "metrics": {"intensity": -0.0}},
    {"sensor_id": SENSORS[0], "seq": 9, "observed_at": STAMP, "metrics": {"intensity": "12"}},
    {"sensor_id": SENSORS[0], "seq": 10, "observed_at": STAMP, "metrics": {"intensity": True}},
    {"sensor_id": SENSORS[0], "seq": 11, "observed_at": STAMP, "metrics": {"intensity": None}},
    {"sensor_id": SENSORS[0], "seq": 12, "observed_at": STAMP, "metrics": {"voltage": 1.0}},
    {"sensor_id": SENSORS[0], "seq": 13, "observed_at": STAMP, "metrics": {}},
    {"sensor_id": SENSORS[0], "seq": 14, "observed_at": STAMP, "metrics": [1.0]},
    {"sensor_id": SENSORS[0], "observed_at": STAMP, "metrics": {"intensity": 1.0}},
    {"sensor_id": SENSORS[0], "seq": 2**63, "observed_at": STAMP, "metrics": {"intensity": 1.0}},
    {"sensor_id": SENSORS[0], "seq": -1, "observed_at": STAMP, "metrics": {"intensity": 1.0}},
    {"sensor_id": SENSORS[0], "seq": True, "observed_at": STAMP, "metrics": {"intensity": 1.0}},
    {"sensor_id": SENSORS[0], "seq": 15, "metrics": {"intensity": 1.0}},
    {"sensor_id": SENSORS[0], "seq": 16, "observed_at": "2026-02-30T00:00:00Z", "metrics": {"intensity": 1.0}},
    {"sensor_id": SENSORS[0], "seq": 17, "observed_at": "2026-03-10T11:59:00", "metrics": {"intensity": 1.0}},
    {"sensor_id": SENSORS[0], "seq": 18, "observed_at": "2026-03-10T24:00:00Z", "metrics": {"intensity": 1.0}},
    {"sensor_id": SENSORS[0], "seq": 19, "observed_at": 1773144000, "metrics": {"intensity": 1.0}},
    {"sensor_id": SENSORS[0], "seq": 20, "observed_at": "0001-01-01T00:00:00Z", "metrics": {"intensity": 1.0}},
    {"sensor_id": SENSORS[0], "seq": 21, "observed_at": "9999-12-31T23:59:59+00:00", "metrics": {"intensity": 1.0}},
    {"sensor_id": SENSORS[0], "seq": 22, "observed_at": "2026-03-10T12:10:00+14:00", "metrics": {"intensity": 1.0}},
    {"sensor_id": SENSORS[0], "seq": 23, "observed_at": STAMP, "metrics": {"intensity": 1.0}, "domain": "x"},
    {"sensor_id": "traffic-zz-999", "seq": 24, "observed_at": STAMP, "metrics": {"intensity": 1.0}},
    {"sensor_id": "not a sensor id", "seq": 25, "observed_at": STAMP, "metrics": {"intensity": 1.0}},
    {"seq": 26, "observed_at": STAMP, "metrics": {"intensity": 1.0}},
    {"sensor_id": SENSORS[0], "seq": 27, "observed_at": STAMP, "metrics": {"intensity": 10_001.0}},
    {"sensor_id": SENSORS[0], "seq": 28, "observed_at": STAMP, "metrics": {"intensity": 1.0}},
    "not an object", None, [1, 2],
]


def _state() -> RegisterState:
    state = RegisterState()
    for sensor_id in SENSORS:
        state.put(registration(sensor_id, GATEWAY_HASH, rate_limit_per_minute=3))
    return state


def _one_by_one(readings: list, credential: str | None, now: datetime = NOW) -> list[Admitted | Rejected]:
    """The slow path: each reading through `admit` with the presented credential and its own clock."""
    state, limiter = _state(), RateLimiter()
    return [admit(raw, parse_credential(credential), state, now, LIMITS, limiter) for raw in readings]


def _batched(readings: list, credential: str | None, now: datetime = NOW) -> list[Admitted | Rejected]:
    return gate_batch(readings, parse_credential(credential), _state(), now, LIMITS, RateLimiter())


def test_tricky_readings_get_the_same_outcome_reason_field_and_detail_in_a_batch_and_one_by_one():
    # Parsed as the HTTP path parses a body orjson refused: NaN and Infinity reach the gate as floats.
    readings = json.loads(json.dumps(TRICKY))
    for credential in (GATEWAY_KEY, OTHER_KEY, None):
        batched, one_by_one = _batched(readings, credential), _one_by_one(readings, credential)
        assert batched == one_by_one
    outcomes = _batched(readings, GATEWAY_KEY)
    admitted = [outcome.seq for outcome in outcomes if isinstance(outcome, Admitted)]
    # 12:10+14:00 is 22:10 the day before: in the window; then traffic-p-001's 3 per minute are spent
    assert admitted == [1, 2, 8, 22]
    reasons = {outcome.seq: (outcome.reason, outcome.field) for outcome in outcomes if isinstance(outcome, Rejected)}
    assert reasons[3] == reasons[4] == reasons[5] == reasons[6] == (RejectionReason.OUT_OF_RANGE, "metrics.intensity")
    assert reasons[9] == reasons[10] == reasons[11] == (RejectionReason.MALFORMED, "metrics.intensity")
    assert reasons[12] == (RejectionReason.UNDECLARED_METRIC, "metrics.voltage")
    assert reasons[16] == reasons[17] == reasons[18] == reasons[19] == (RejectionReason.MALFORMED, "observed_at")
    assert reasons[20] == (RejectionReason.TIMESTAMP_TOO_OLD, "observed_at")
    assert reasons[21] == (RejectionReason.TIMESTAMP_IN_FUTURE, "observed_at")
    assert reasons[23] == (RejectionReason.MALFORMED, "domain")
    assert reasons[24] == (RejectionReason.UNKNOWN_SENSOR, "sensor_id")
    assert reasons[25] == (RejectionReason.MALFORMED, "sensor_id")
    assert reasons[26] == (RejectionReason.MALFORMED, "sensor_id")  # a gateway credential needs the name
    assert reasons[27] == (RejectionReason.OUT_OF_RANGE, "metrics.intensity")
    assert reasons[28] == (RejectionReason.RATE_LIMITED, None)


def _window_reason(observed: datetime, now: datetime) -> RejectionReason | None:
    """The window rule written with datetimes, as the gate compared before it used epoch microseconds."""
    if observed > now + LIMITS.clock_skew:
        return RejectionReason.TIMESTAMP_IN_FUTURE
    if observed < now - LIMITS.max_age:
        return RejectionReason.TIMESTAMP_TOO_OLD
    return None


def test_the_window_in_epoch_microseconds_decides_as_datetimes_at_its_edges_in_every_offset():
    offsets = [UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12)),
               timezone(timedelta(hours=5, minutes=45)), timezone(timedelta(minutes=-1))]
    edges = [NOW + LIMITS.clock_skew, NOW - LIMITS.max_age]
    readings, expected = [], []
    for edge in edges:
        for step_us in (-1, 0, 1):
            for offset in offsets:
                observed = (edge + timedelta(microseconds=step_us)).astimezone(offset)
                readings.append({"sensor_id": SENSORS[len(readings) % 2], "seq": len(readings),
                                 "observed_at": observed.isoformat(), "metrics": {"intensity": 1.0}})
                expected.append(_window_reason(observed, NOW))
    state, limiter = RegisterState(), RateLimiter()
    for sensor_id in SENSORS:
        state.put(registration(sensor_id, GATEWAY_HASH, rate_limit_per_minute=1000))
    outcomes = gate_batch(readings, parse_credential(GATEWAY_KEY), state, NOW, LIMITS, limiter)
    got = [outcome.reason if isinstance(outcome, Rejected) else None for outcome in outcomes]
    assert got == expected
    assert set(expected) == {None, RejectionReason.TIMESTAMP_IN_FUTURE, RejectionReason.TIMESTAMP_TOO_OLD}


def test_gate_clock_bounds_are_the_datetime_bounds():
    clock = GateClock.of(NOW, LIMITS)
    assert clock.latest_us == epoch_us(NOW + LIMITS.clock_skew)
    assert clock.earliest_us == epoch_us(NOW - LIMITS.max_age)
    assert clock.now_s == NOW.timestamp()
    assert epoch_us(datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC)) == 1
    assert epoch_us(datetime(1970, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))) == 0


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(readings=st.lists(near_valid, min_size=1, max_size=6),
       credential=st.sampled_from([GATEWAY_KEY, OTHER_KEY, None, "a.b"]))
def test_random_batches_get_the_same_outcomes_as_one_by_one(readings, credential):
    assert _batched(readings, credential) == _one_by_one(readings, credential)


def test_the_key_index_follows_every_register_change():
    state = RegisterState()
    state.put(registration("traffic-p-002", GATEWAY_HASH))
    state.put(registration("traffic-p-001", GATEWAY_HASH))
    assert [entry.record.sensor_id for entry in state.sensors_for_key(GATEWAY_HASH.key_id)] == list(SENSORS)
    assert state.sensors_for_key(OTHER_HASH.key_id) == ()
    # the credential moves to another key: both answers change
    state.put(registration("traffic-p-002", OTHER_HASH, version=2))
    assert [entry.record.sensor_id for entry in state.sensors_for_key(GATEWAY_HASH.key_id)] == ["traffic-p-001"]
    assert [entry.record.sensor_id for entry in state.sensors_for_key(OTHER_HASH.key_id)] == ["traffic-p-002"]
    assert state.sensors_for_key(OTHER_HASH.key_id)[0].record.version == 2
    state.delete("traffic-p-001")
    assert state.sensors_for_key(GATEWAY_HASH.key_id) == ()
    state.put(registration("traffic-p-003", GATEWAY_HASH))
    assert [entry.record.sensor_id for entry in state.sensors_for_key(GATEWAY_HASH.key_id)] == ["traffic-p-003"]


def test_an_admitted_record_keeps_the_offset_its_reading_was_sent_in():
    # equal instants, different offsets: equal datetimes, so a memo keyed by the datetime alone mixed them up
    sent = [(NOW - timedelta(seconds=1)).astimezone(timezone(timedelta(hours=hours))) for hours in (0, 2, -5, 0)]
    readings = [{"sensor_id": SENSORS[index % 2], "seq": 100 + index, "observed_at": moment.isoformat(),
                 "metrics": {"intensity": 1.0}} for index, moment in enumerate(sent)]
    outcomes = _batched(readings, GATEWAY_KEY)
    written = [orjson.loads(admitted_record(outcome, "ingest-test").value)["observed_at"] for outcome in outcomes]
    assert written == [moment.isoformat() for moment in sent]
    assert len({datetime.fromisoformat(text) for text in written}) == 1
