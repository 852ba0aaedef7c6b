"""Every detector: a normal signal stays quiet, each anomaly kind fires in its window, the explanation is complete."""

from __future__ import annotations

import orjson
import pytest

from schemas.alerts import AlertEventType, AlertKind
from services.anomaly.detectors import Obs, Profile, generic
from services.anomaly.detectors.generic import Silence
from services.anomaly.engine import Engine
from services.anomaly.scenarios import SPECS, generate
from tests.unit.anomaly.helpers import opened, run

NORMAL = [name for name, spec in SPECS.items() if spec[1] is None]
ANOMALOUS = [name for name, spec in SPECS.items() if spec[1] is not None]


@pytest.mark.parametrize("name", NORMAL)
def test_a_normal_signal_stays_quiet(name):
    scenario = generate(name)
    assert opened(run(scenario)) == []


def _detectors_by_kind(domain: str) -> dict[str, list]:
    found: dict[str, list] = {}
    for detector in [*Engine(domain).detectors, Silence()]:
        found.setdefault(detector.kind.value, []).append(detector)
    return found


@pytest.mark.parametrize("name", ANOMALOUS)
def test_each_anomaly_kind_fires_inside_its_window_with_a_complete_explanation(name):
    """Complete = detector id and version of a detector of that kind in the domain's set, observed, expected,
    score at or above the detector's own threshold, and contributing readings that are real readings.

    `expected` means: the seasonal baseline (value kinds), the previous value (rapid change), the declared limit
    (range), the usual reporting interval in s (silence: there is no observed value, `observed` is the gap), the
    baseline the stuck value should vary around (stuck sensor) and the usual emptying interval in hours
    (missed collection: `observed` is how long the bin has been full)."""
    scenario = generate(name)
    start, end = scenario.windows[0]
    events = opened(run(scenario))
    hits = [e for e in events if e.kind == scenario.kind and start <= e.occurred_at.timestamp() <= end]
    assert hits, f"no {scenario.kind} alert in the window; got {[(e.kind, e.occurred_at) for e in events]}"
    before = [e for e in events if e.occurred_at.timestamp() < start]
    assert before == [], "false alarms before the anomaly"
    x = hits[0].explanation
    candidates = _detectors_by_kind(scenario.domain)[scenario.kind]
    detector = next((d for d in candidates if d.id == x.detector), None)
    assert detector is not None, f"{x.detector} does not raise {scenario.kind} in the {scenario.domain} set"
    assert x.detector_version == type(detector).version
    assert x.threshold == detector.threshold and x.score >= x.threshold
    assert x.metric and x.summary and x.expected is not None
    assert x.contributing, "an alert must cite the readings that led to it"
    by_seq = {obs.seq: obs for obs in scenario.readings}
    for cited in x.contributing:
        obs = by_seq[cited.seq]
        assert cited.observed_at.timestamp() == obs.t
        if cited.metric != "*":
            assert cited.value == pytest.approx(obs.metrics[cited.metric])
    if scenario.kind == "silence":
        assert x.observed >= x.threshold * x.expected, "observed is the gap, expected the usual interval"
    elif scenario.kind == "missed_collection":
        assert x.observed == pytest.approx(x.score * x.expected), "hours full against the usual interval"
    elif scenario.kind == "abnormal_fill_rate":  # a rate per hour between the two cited readings
        first, last = x.contributing
        hours = (last.observed_at - first.observed_at).total_seconds() / 3600
        assert x.observed == pytest.approx((last.value - first.value) / hours, rel=1e-5)
    else:  # the observed value is a cited reading's value of the explained metric
        assert any(c.metric == x.metric and c.value == pytest.approx(x.observed, rel=1e-5) for c in x.contributing)


def _series(detector, values, start=1e9, step=300.0):
    """Runs one detector over a series the way the engine does (view before learning); returns the verdicts."""
    from services.anomaly.detectors import baseline

    hot, seasonal, st, verdicts = baseline.new_hot(), baseline.new_seasonal(), {}, []
    for i, x in enumerate(values):
        t = start + i * step
        v = baseline.view(hot, seasonal, t, x)
        verdicts.append(detector.judge(st, Obs("s-1", i, t, {"value": x}), {"value": v}, Profile()))
        baseline.learn(hot, seasonal, t, x, v)
    return verdicts


NOISY = [50.0 + (i * 7919 % 11) - 5 for i in range(400)]  # a deterministic ±5 wobble around 50


@pytest.mark.parametrize("detector", [generic.RapidChange("value"), generic.AnomalousValue("value")],
                         ids=lambda d: d.id)
def test_generic_value_detectors_stay_quiet_on_a_wobbling_signal(detector):
    assert not any(v is not None and v.firing for v in _series(detector, NOISY))


def test_rapid_change_fires_on_a_step_far_beyond_the_usual_with_a_complete_explanation():
    verdicts = _series(generic.RapidChange("value"), NOISY + [400.0])
    v = verdicts[-1]
    assert v is not None and v.firing, v
    x = v.explanation()
    assert (x.detector, x.detector_version, x.metric) == ("generic.rapid_change", "1.2.0", "value")
    assert x.observed == 400.0 and x.expected == NOISY[-1], "expected = the previous value"
    assert x.score >= x.threshold == 8.0
    assert [(c.seq, c.value) for c in x.contributing] == [(len(NOISY), 400.0)]
    assert "jumped from" in x.summary


def test_rapid_change_is_silent_while_warming_up_and_then_learns_the_usual_step():
    warm = _series(generic.RapidChange("value"), [50.0, 400.0] * 6)
    assert all(v is None for v in warm), "the first WARMUP steps only teach the usual step"
    big_steps = _series(generic.RapidChange("value"), [50.0, 400.0] * 40)
    assert not any(v.firing for v in big_steps if v is not None), "a square wave's step is its usual step"


def test_anomalous_value_fires_against_the_seasonal_baseline_with_a_complete_explanation():
    v = _series(generic.AnomalousValue("value"), NOISY + [200.0])[-1]
    assert v is not None and v.firing
    x = v.explanation()
    assert (x.detector, x.detector_version, x.metric) == ("generic.anomalous_value", "1.0.0", "value")
    assert x.observed == 200.0 and 45.0 < x.expected < 55.0
    assert x.score >= x.threshold == 5.0
    assert [(c.seq, c.value) for c in x.contributing] == [(len(NOISY), 200.0)]


def test_every_detector_declares_its_own_version():
    for domain in ("traffic", "energy", "waste", "generic"):
        for detector in Engine(domain).detectors:
            assert "version" in type(detector).__dict__, f"{type(detector).__name__} inherits its version"
    assert type(generic.RapidChange("x")).version == "1.2.0", "scoring of counts changed"


def test_congestion_needs_high_occupancy():
    engine = Engine("traffic", with_rollups=False)
    state = engine.new_state()
    for i in range(200):
        engine.observe(state, Obs("t-1", i, 1e9 + i * 300, {"averageVehicleSpeed": 50.0 + i % 3,
                                                              "occupancy": 0.1, "intensity": 40.0 + i % 5}), Profile())
    slow_but_empty = engine.observe(state, Obs("t-1", 200, 1e9 + 200 * 300, {
        "averageVehicleSpeed": 10.0, "occupancy": 0.05, "intensity": 40.0}), Profile())
    assert not any(e.kind == AlertKind.CONGESTION for e in slow_but_empty.events)
    jammed = engine.observe(state, Obs("t-1", 201, 1e9 + 201 * 300, {
        "averageVehicleSpeed": 10.0, "occupancy": 0.7, "intensity": 40.0}), Profile())
    assert [e.kind for e in jammed.events] == [AlertKind.CONGESTION]


def test_physical_range_from_the_register_fires_and_names_the_metric():
    engine = Engine("energy", with_rollups=False)
    state = engine.new_state()
    profile = Profile(ranges={"voltage": (0.0, 400.0)})
    quiet = engine.observe(state, Obs("e-1", 1, 1e9, {"voltage": 230.0}), profile)
    assert quiet.events == []
    loud = engine.observe(state, Obs("e-1", 2, 1e9 + 60, {"voltage": 612.0}), profile)
    assert [e.kind for e in loud.events] == [AlertKind.OUT_OF_RANGE]
    assert loud.events[0].explanation.metric == "voltage" and loud.events[0].explanation.expected == 400.0


def test_silence_is_found_by_the_timer_not_by_the_next_reading():
    engine = Engine("waste", with_rollups=False)
    state = engine.new_state()
    for i in range(10):
        engine.observe(state, Obs("w-1", i, 1e9 + i * 60, {"fillingLevel": 0.2}), Profile(), arrival=1e9 + i * 60)
    last = 1e9 + 9 * 60
    assert engine.tick(state, "w-1", last + 150, Profile()).events == []
    silent = engine.tick(state, "w-1", last + 200, Profile()).events
    assert [(e.kind, e.event_type) for e in silent] == [(AlertKind.SILENCE, AlertEventType.OPENED)]
    assert engine.tick(state, "w-1", last + 400, Profile()).events == [], "one open alert per kind"


def test_register_interval_overrides_the_learned_one():
    engine = Engine("waste", with_rollups=False)
    state = engine.new_state()
    for i in range(5):
        engine.observe(state, Obs("w-2", i, 1e9 + i * 60, {"fillingLevel": 0.2}), Profile(), arrival=1e9 + i * 60)
    hourly = Profile(interval_s=3600)
    assert engine.tick(state, "w-2", 1e9 + 4 * 60 + 600, hourly).events == []
    assert engine.tick(state, "w-2", 1e9 + 4 * 60 + 3 * 3600, hourly).events != []


def test_state_survives_a_json_round_trip_and_judges_identically():
    scenario = generate("energy_spike")
    split = len(scenario.readings) * 3 // 4
    engine = Engine("energy")
    straight = engine.new_state()
    resumed = engine.new_state()
    for obs in scenario.readings[:split]:
        engine.observe(straight, obs, Profile())
        engine.observe(resumed, obs, Profile())
    resumed = orjson.loads(orjson.dumps(resumed))
    a = [e for obs in scenario.readings[split:] for e in engine.observe(straight, obs, Profile()).events]
    b = [e for obs in scenario.readings[split:] for e in engine.observe(resumed, obs, Profile()).events]
    assert a and a == b


def test_a_redelivered_reading_changes_nothing():
    engine = Engine("traffic", with_rollups=False)
    state = engine.new_state()
    obs = Obs("t-9", 5, 1e9, {"intensity": 10.0})
    assert not engine.observe(state, obs, Profile()).duplicate
    before = orjson.dumps(state)
    assert engine.observe(state, obs, Profile()).duplicate
    assert orjson.dumps(state) == before


SPECIFIC = [name for name in ANOMALOUS
            if SPECS[name][1] not in ("rapid_change", "anomalous_value", "stuck_sensor", "silence")]


@pytest.mark.parametrize("name", SPECIFIC)
def test_one_anomaly_raises_its_specific_alert_not_a_generic_echo_on_the_same_metric(name):
    """A spike is also a rapid change of activePower, an outage also a stuck value: the operator gets the domain
    rule's alert, not the generic detectors' restatement of it on the same metric."""
    scenario = generate(name)
    start, end = scenario.windows[0]
    events = [e for e in opened(run(scenario)) if start - 3600 <= e.occurred_at.timestamp() <= end + 3600]
    specific_metrics = {e.explanation.metric for e in events if e.kind == scenario.kind}
    echoes = [(e.kind, e.explanation.metric) for e in events
              if e.kind in (AlertKind.RAPID_CHANGE, AlertKind.ANOMALOUS_VALUE, AlertKind.STUCK_SENSOR)
              and e.explanation.metric in specific_metrics]
    assert specific_metrics and echoes == []
