"""Property tests: the gate never raises, agrees with RawReading, and admits exactly what the rules allow."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.readings import RawReading
from schemas.register import SensorStatus
from services.ingest.credentials import parse_credential
from services.ingest.gate import Admitted, GateLimits, Rejected, admit
from services.ingest.ratelimit import RateLimiter
from services.ingest.register_state import RegisterState
from tests.support.ingest_factories import new_credential, registration

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SENSOR_KEY, SENSOR_HASH = new_credential()
OLD_KEY, OLD_HASH = new_credential(not_after=NOW - timedelta(minutes=1))

json_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
timestamps = st.one_of(st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()), st.text(max_size=30))
near_valid = st.fixed_dictionaries(
    {"seq": st.integers(-5, 2**64) | json_scalars, "observed_at": timestamps,
     "metrics": st.dictionaries(st.sampled_from(["intensity", "averageVehicleSpeed", "voltage", ""]),
                                st.floats() | st.integers() | json_scalars, max_size=3)},
    optional={"sensor_id": st.sampled_from(["traffic-p-001", "x", "traffic-zz-999"]) | json_scalars,
              "extra": json_scalars},
)


def _state() -> RegisterState:
    state = RegisterState()
    state.put(registration("traffic-p-001", SENSOR_HASH))
    return state


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(raw=json_values | near_valid, credential=st.sampled_from([SENSOR_KEY, None, "garbage", "a.b"]))
def test_random_payloads_never_raise_and_admitted_ones_satisfy_the_contract(raw, credential):
    outcome = admit(raw, parse_credential(credential), _state(), NOW, GateLimits(), RateLimiter())
    assert isinstance(outcome, (Admitted, Rejected))
    if isinstance(outcome, Admitted):
        RawReading.model_validate(raw)
    else:
        assert outcome.detail


registrations = st.builds(
    dict,
    status=st.sampled_from(list(SensorStatus)),
    starts_in_s=st.none() | st.integers(-3600, 3600),
    ends_in_s=st.none() | st.integers(-3600, 3600),
    rate=st.integers(1, 4),
    credential_expired=st.booleans(),
)
readings = st.builds(
    dict,
    metric=st.sampled_from(["intensity", "averageVehicleSpeed", "voltage"]),
    value=st.floats(allow_nan=True, allow_infinity=True) | st.floats(-10, 300),
    age_s=st.integers(-600, 8 * 86400),
    right_secret=st.booleans(),
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(history=st.lists(registrations, min_size=1, max_size=4), sent=st.lists(readings, min_size=1, max_size=8))
def test_admitted_iff_every_rule_holds(history, sent):
    state, limiter = RegisterState(), RateLimiter()
    for version, spec in enumerate(history, start=1):
        stored = OLD_HASH if spec["credential_expired"] else SENSOR_HASH
        state.put(registration(
            "traffic-p-001", stored, version=version, status=spec["status"], rate_limit_per_minute=spec["rate"],
            active_from=None if spec["starts_in_s"] is None else NOW + timedelta(seconds=spec["starts_in_s"]),
            active_until=None if spec["ends_in_s"] is None else NOW + timedelta(seconds=spec["ends_in_s"])))
    final = history[-1]
    admitted_so_far = 0
    for seq, item in enumerate(sent):
        key = (OLD_KEY if final["credential_expired"] else SENSOR_KEY) if item["right_secret"] else "kx.nope"
        raw = {"sensor_id": "traffic-p-001", "seq": seq, "metrics": {item["metric"]: item["value"]},
               "observed_at": (NOW - timedelta(seconds=item["age_s"])).isoformat()}
        outcome = admit(raw, parse_credential(key), state, NOW, GateLimits(), limiter)
        bounds = {"intensity": (0, 10_000), "averageVehicleSpeed": (0, 250)}.get(item["metric"])
        active = final["status"] is SensorStatus.ACTIVE
        in_window = ((final["starts_in_s"] is None or final["starts_in_s"] <= 0)
                     and (final["ends_in_s"] is None or final["ends_in_s"] > 0))
        credential_valid = item["right_secret"] and not final["credential_expired"]
        declared = bounds is not None
        in_range = declared and math.isfinite(item["value"]) and bounds[0] <= item["value"] <= bounds[1]
        in_time = -300 <= item["age_s"] <= 7 * 86400
        allowed_but_rate = active and in_window and credential_valid and declared and in_range and in_time
        within_rate = admitted_so_far < final["rate"]
        assert isinstance(outcome, Admitted) == (allowed_but_rate and within_rate), (outcome, item, final)
        admitted_so_far += isinstance(outcome, Admitted)
