"""The calibrated anomaly score on small synthetic series (seasonal noise, step, spike, drift, flatline) and the
determinism of its state round-trip; the fill-rate rule on a clamped level and a sustained fast fill."""

from __future__ import annotations

import math
import random

import orjson

from schemas.alerts import AlertEventType
from services.anomaly import state as codec
from services.anomaly.detectors import Obs, Profile
from services.anomaly.detectors.scoring import LEARNING, AnomalyScore, calibrated
from services.anomaly.engine import Engine

START = 1_767_571_200.0  # a Monday 00:00 UTC
STEP_S = 300.0
DAY = 288  # readings of 5 minutes


def seasonal(n: int, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [50 + 20 * math.sin(2 * math.pi * i / DAY) + rng.gauss(0, 1.0) for i in range(n)]


def openings(values: list[float], domain: str = "generic") -> list[tuple[int, str]]:
    engine = Engine("energy", domain, with_rollups=False)
    state, found = engine.new_state(), []
    for i, x in enumerate(values):
        for event in engine.observe(state, Obs("sensor-1", i, START + i * STEP_S, {"value": x}), Profile()).events:
            if event.event_type == AlertEventType.OPENED:
                found.append((i, event.kind.value))
    return found


def scores(engine: Engine, state: dict, values: list[float], first: int) -> list[float]:
    out = []
    for i, x in enumerate(values, start=first):
        obs = Obs("sensor-1", i, START + i * STEP_S, {"value": x})
        outcome = engine.observe(state, obs, Profile(), explain_all=True)
        out += [round(v.score, 12) for v in outcome.verdicts if v.detector == AnomalyScore.id]
    return out


def test_log_scale_puts_the_default_threshold_at_a_tail_of_1e_5():
    assert calibrated(1.0 - 1e-5) == __import__("pytest").approx(0.5, abs=1e-6)
    assert calibrated(0.5) < 0.05


def test_seasonal_noise_stays_quiet():
    assert openings(seasonal(8 * DAY)) == []


def test_step_opens_within_two_readings():
    values = seasonal(6 * DAY)
    at = 5 * DAY + 40
    values[at:] = [x + 40 for x in values[at:]]
    found = [i for i, kind in openings(values) if kind == "anomalous_value"]
    assert found and at <= found[0] <= at + 2


def test_spike_opens_at_the_spike_and_only_once():
    values = seasonal(6 * DAY)
    at = 5 * DAY + 100
    values[at] += 60
    found = [i for i, kind in openings(values) if kind == "anomalous_value"]
    assert found == [at]


def test_slow_drift_is_found_before_it_ends():
    values = seasonal(8 * DAY)
    start = 5 * DAY
    for i in range(start, len(values)):
        values[i] += 40 * min(1.0, (i - start) / DAY)  # two noise sigmas an hour, for a day
    found = [i for i, kind in openings(values) if kind == "anomalous_value"]
    assert found and start < found[0] < start + DAY


def test_flatline_is_a_stuck_sensor_not_an_anomalous_value():
    values = seasonal(6 * DAY)
    at = 5 * DAY + 10
    values[at:at + 40] = [values[at]] * 40
    found = openings(values)
    assert (at + 11, "stuck_sensor") in found
    assert not any(kind == "anomalous_value" for _, kind in found)


def test_learning_period_falls_back_to_the_robust_z():
    values = seasonal(LEARNING // 2)
    values[-1] += 80  # far out while the score's distribution is still learning
    found = openings(values)
    assert (len(values) - 1, "anomalous_value") in found


def test_state_round_trip_gives_the_same_future_scores():
    values = seasonal(5 * DAY, seed=3)
    values[4 * DAY + 50] += 30
    engine = Engine("energy", "generic", with_rollups=False)
    state = engine.new_state()
    half = 3 * DAY
    scores(engine, state, values[:half], 0)
    # The worker's hot-table codec carries the detector state (everything but the seasonal buckets) exactly.
    hot = codec.decode_hot(codec.encode_hot(state))
    restored = {**hot, "b": orjson.loads(orjson.dumps(state["b"]))}
    assert hot["d"][f"{AnomalyScore.id}/value"] == state["d"][f"{AnomalyScore.id}/value"]
    after = scores(engine, state, values[half:], half)
    again = scores(engine, restored, values[half:], half)
    assert after == again and max(after) >= 0.5


def test_fill_rate_is_not_fooled_by_a_noise_free_spell_and_finds_a_sustained_fast_fill():
    engine = Engine("waste", with_rollups=False)
    state, rng = engine.new_state(), random.Random(5)
    found, t = [], START

    def read(i: int, level: float) -> None:
        metrics = {"fillingLevel": round(level, 3), "temperature": 12.0 + rng.gauss(0, 0.4)}
        found.extend((i, e.kind.value) for e in engine.observe(state, Obs("bin-1", i, t + i * STEP_S, metrics),
                                                                Profile()).events
                     if e.event_type == AlertEventType.OPENED)

    i = 0
    for _ in range(6):  # six 36-hour cycles: 0.02 per hour plus noise
        for k in range(432):
            read(i, min(1.0, 0.03 + 0.02 * k / 12 + rng.gauss(0, 0.004)))
            i += 1
    for k in range(300):  # a clamped, noise-free ramp to full, then noise again
        read(i, min(1.0, 0.75 + 0.02 * k / 12))
        i += 1
    quiet_from = i
    for k in range(60):
        read(i, 0.5 + 0.02 * k / 12 + rng.gauss(0, 0.004))
        i += 1
    assert not any(kind == "abnormal_fill_rate" and at >= quiet_from for at, kind in found)
    fast_from = i
    for k in range(12):  # +0.5 per hour on top of the usual filling
        read(i, 0.6 + 0.52 * k / 12 + rng.gauss(0, 0.004))
        i += 1
    assert any(kind == "abnormal_fill_rate" and fast_from <= at < fast_from + 4 for at, kind in found)


def test_an_opened_alert_explains_itself_with_score_likelihood_band_and_readings():
    values = seasonal(6 * DAY)
    at = 5 * DAY + 100
    values[at] += 60
    engine = Engine("energy", "generic", with_rollups=False)
    state, opened = engine.new_state(), []
    for i, x in enumerate(values):
        outcome = engine.observe(state, Obs("sensor-1", i, START + i * STEP_S, {"value": x}), Profile())
        opened += [e for e in outcome.events if e.event_type == AlertEventType.OPENED]
    (event,) = opened
    x = event.explanation
    assert x.detector == AnomalyScore.id and x.score >= x.threshold == 0.5
    assert x.raw_score is not None and 0 < x.raw_score < 1
    assert x.expected_low < x.expected < x.expected_high < x.observed
    # Far beyond the range seen so far: scored 1 by the range check; the likelihood is reported beside it.
    assert x.score == 1.0 and "outside the range seen so far" in x.summary and 0.5 < x.likelihood <= 1.0
    assert [(c.seq, c.value) for c in x.contributing] == [(at - 1, values[at - 1]), (at, values[at])]
