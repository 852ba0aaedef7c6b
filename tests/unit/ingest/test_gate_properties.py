"""Property tests: the gate (and the HTTP batch path around it) never raises, agrees with RawReading, and admits
exactly what the rules allow at every reading of a random register history."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime, timedelta

import httpx
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.readings import RawReading
from schemas.register import MetricDeclaration, SensorStatus
from schemas.rejections import RejectedReading, RejectionReason
from services.ingest.credentials import parse_credential
from services.ingest.gate import Admitted, GateLimits, Rejected, admit
from services.ingest.http_app import create_app
from services.ingest.ratelimit import RateLimiter
from services.ingest.register_state import RegisterState
from tests.support.ingest_factories import new_credential, registration
from tests.unit.ingest.test_http_surrogates import runtime as acking_runtime

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SENSOR_KEY, SENSOR_HASH = new_credential()
OLD_KEY, OLD_HASH = new_credential(not_after=NOW - timedelta(minutes=1))

# Text as a client may send it, lone surrogates included (st.text leaves category Cs out by default).
SURROGATES = "\ud800\udbff\udc00\udfff"
texts = st.text(st.characters(exclude_categories=()) | st.sampled_from(SURROGATES), max_size=20)
json_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | texts
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(texts, inner, max_size=4), max_leaves=12)
timestamps = st.one_of(st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()), texts)
near_valid = st.fixed_dictionaries(
    {"seq": st.integers(-5, 2**64) | json_scalars, "observed_at": timestamps,
     "metrics": st.dictionaries(st.sampled_from(["intensity", "averageVehicleSpeed", "voltage", "", "\ud800"]),
                                st.floats() | st.integers() | json_scalars, max_size=3)},
    optional={"sensor_id": st.sampled_from(["traffic-p-001", "x", "traffic-zz-999", "traffic-\udc00"])
              | json_scalars, "extra": json_scalars},
)


def _state() -> RegisterState:
    state = RegisterState()
    state.put(registration("traffic-p-001", SENSOR_HASH))
    return state


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(raw=json_values | near_valid, credential=st.sampled_from([SENSOR_KEY, None, "garbage", "a.b"]),
       lenient=st.booleans())
def test_random_payloads_never_raise_and_admitted_ones_satisfy_the_contract(raw, credential, lenient):
    outcome = admit(raw, parse_credential(credential), _state(), NOW, GateLimits(), RateLimiter(),
                    lenient_json=lenient)
    assert isinstance(outcome, (Admitted, Rejected))
    if isinstance(outcome, Admitted):
        RawReading.model_validate(raw)
    else:
        assert outcome.detail


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(readings=st.lists(json_values | near_valid, min_size=1, max_size=5),
       credential=st.sampled_from([None, "garbage", "kx.nope"]), wrap=st.booleans())
def test_random_http_batches_never_give_a_500_and_every_produced_record_is_valid_json(readings, credential, wrap):
    """The whole HTTP batch path (parse, gate, records, answer) on text the standard library writes: NaN,
    Infinity and lone surrogate escapes included (ensure_ascii writes them as \\uXXXX)."""
    gate, producer = acking_runtime()
    body = json.dumps({"readings": readings} if wrap else readings)

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(gate.settings, gate), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            headers = {"Authorization": f"Bearer {credential}"} if credential else {}
            return await client.post("/v1/readings", content=body, headers=headers)

    response = asyncio.run(post())
    assert response.status_code in {200, 207, 400, 401, 403, 404, 413, 422, 429}, response.text
    answer = orjson.loads(response.content)  # valid UTF-8 JSON
    if response.status_code == 400 and "outcomes" not in answer:
        assert answer["reason"] == "MALFORMED"
    for batch in producer.batches:
        for record in batch:
            document = orjson.loads(record["value"])
            if "reason" in document:
                RejectedReading.model_validate(document)


# --- admitted ⇔ every rule holds, at every reading of an interleaved register history ---------------------------

SENSOR = "traffic-p-001"
POOL = [new_credential() for _ in range(4)]  # (presented text, stored hash); a registration holds a subset
EXPIRED_AT = NOW - timedelta(minutes=1)
BOUNDS = {"intensity": (0.0, 10_000.0), "averageVehicleSpeed": (0.0, 250.0)}

register_change = st.fixed_dictionaries({
    "kind": st.just("register"),
    "status": st.sampled_from(list(SensorStatus)),
    "starts_in_s": st.none() | st.integers(-3600, 3600),
    "ends_in_s": st.none() | st.integers(-3600, 3600),
    "rate": st.integers(1, 4),
    # metric -> declared max (min 0); an empty choice keeps one metric, a sensor declares at least one
    "metrics": st.dictionaries(st.sampled_from(sorted(BOUNDS)), st.sampled_from([50.0, 250.0, 10_000.0]),
                               min_size=1),
    # credential rotation: which keys of the pool the sensor holds now, each possibly expired
    "credentials": st.dictionaries(st.integers(0, len(POOL) - 1), st.booleans(), min_size=1, max_size=3),
})
tombstone = st.just({"kind": "tombstone"})  # the sensor leaves the register: UNKNOWN_SENSOR from here
replay_old = st.builds(dict, kind=st.just("replay_old"), back=st.integers(1, 3))  # an older version re-delivered
advance = st.builds(dict, kind=st.just("advance"), seconds=st.integers(1, 120))  # the clock moves: tokens refill
reading_event = st.fixed_dictionaries({
    "kind": st.just("reading"),
    "metric": st.sampled_from(["intensity", "averageVehicleSpeed", "voltage"]),
    "value": st.floats(allow_nan=True, allow_infinity=True) | st.floats(-10, 300) | st.sampled_from([0.0, 50.0]),
    "age_s": st.integers(-600, 8 * 86400) | st.sampled_from([-300, -301, 0, 7 * 86400, 7 * 86400 + 1]),
    "key": st.integers(0, len(POOL) - 1) | st.just(None),  # None: a wrong secret
})
events = st.lists(register_change | tombstone | replay_old | advance | reading_event | reading_event,
                  min_size=1, max_size=25)


def _record(spec: dict, version: int):
    stored = [POOL[index][1].model_copy(update={"not_after": EXPIRED_AT}) if expired else POOL[index][1]
              for index, expired in sorted(spec["credentials"].items())]
    base = registration(
        SENSOR, *stored, version=version, status=spec["status"], rate_limit_per_minute=spec["rate"],
        active_from=None if spec["starts_in_s"] is None else NOW + timedelta(seconds=spec["starts_in_s"]),
        active_until=None if spec["ends_in_s"] is None else NOW + timedelta(seconds=spec["ends_in_s"]))
    declared = tuple(MetricDeclaration(name=name, unit="u", min=0, max=high)
                     for name, high in sorted(spec["metrics"].items()))
    return base.model_copy(update={"metrics": declared})


class Bucket:
    """The reference rate limit: a minute's allowance, reset when the register changes the rate, refilled by time."""

    def __init__(self) -> None:
        self.rate: int | None = None
        self.tokens = 0.0
        self.at_s = 0.0

    def take(self, rate: int, now_s: float) -> bool:
        if self.rate != rate:
            self.rate, self.tokens, self.at_s = rate, float(rate), now_s
        self.tokens = min(float(rate), self.tokens + max(0.0, now_s - self.at_s) * rate / 60.0)
        self.at_s = max(self.at_s, now_s)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(history=events)
def test_admitted_iff_every_rule_holds_at_every_reading_of_an_interleaved_history(history):
    state, limiter, bucket = RegisterState(), RateLimiter(), Bucket()
    published: list = []  # every version put on the topic, in order
    current: dict | None = None  # the registration in force (spec), None while unknown
    clock_s, seq, readings_checked = 0, 0, 0
    for event in history:
        kind = event["kind"]
        if kind == "register":
            record = _record(event, len(published) + 1)
            published.append(record)
            assert state.put(record)
            current = event
        elif kind == "tombstone":
            state.delete(SENSOR)
            current = None
        elif kind == "replay_old":
            if current is not None and len(published) > event["back"]:
                assert not state.put(published[-1 - event["back"]])  # older than the version held: ignored
        elif kind == "advance":
            clock_s += event["seconds"]
        else:
            now = NOW + timedelta(seconds=clock_s)
            key = POOL[event["key"]][0] if event["key"] is not None else POOL[0][0].split(".")[0] + ".nope"
            seq += 1
            raw = {"sensor_id": SENSOR, "seq": seq, "metrics": {event["metric"]: event["value"]},
                   "observed_at": (now - timedelta(seconds=event["age_s"])).isoformat()}
            outcome = admit(raw, parse_credential(key), state, now, GateLimits(), limiter)
            readings_checked += 1
            if current is None:
                assert isinstance(outcome, Rejected) and outcome.reason is RejectionReason.UNKNOWN_SENSOR
                continue
            starts, ends = current["starts_in_s"], current["ends_in_s"]
            active = current["status"] is SensorStatus.ACTIVE
            in_window = (starts is None or clock_s >= starts) and (ends is None or clock_s < ends)
            held = current["credentials"]
            credential_valid = event["key"] is not None and event["key"] in held and not held[event["key"]]
            high = current["metrics"].get(event["metric"])
            declared = high is not None
            in_range = declared and math.isfinite(event["value"]) and 0 <= event["value"] <= high
            in_time = -300 <= event["age_s"] <= 7 * 86400
            all_but_rate = active and in_window and credential_valid and declared and in_range and in_time
            # the token is taken only for a reading that passed everything else
            within_rate = all_but_rate and bucket.take(current["rate"], now.timestamp())
            assert isinstance(outcome, Admitted) == (all_but_rate and within_rate), (outcome, event, current)
            if all_but_rate and not within_rate:
                assert outcome.reason is RejectionReason.RATE_LIMITED
            if isinstance(outcome, Admitted):
                assert outcome.register_version == len(published)
