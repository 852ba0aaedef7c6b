"""Every anomaly kind the detectors know is injected and labelled, each injected episode is what its name says, and
— replayed offline through the anomaly worker's own engine at a realistic 5-minute cadence — each one is detected."""

from __future__ import annotations

import inspect
import itertools
from datetime import UTC, datetime

import pytest

from citystream.simulate import signals
from citystream.simulate.anomalies import (
    DRIFT_FACTOR,
    EPISODES,
    GENERIC_KINDS,
    INJECTED_KINDS,
    MISSED_ROUNDS,
    AnomalyPlan,
)
from citystream.simulate.city import DECLARED, build_fleet
from citystream.simulate.model import CityModel, SimConfig
from schemas.alerts import AlertKind
from schemas.common import Domain
from services.anomaly.detectors import Obs, Profile, energy, generic, traffic, waste
from services.anomaly.engine import Engine
from services.anomaly.replay import replay

INTERVAL_S = 300.0
# A Monday 10:00 local, more than a week after the sim starts: drift is judged against a full hour-of-week history.
EPISODE_START = datetime(2026, 1, 12, 9, 0, tzinfo=UTC).timestamp()
HISTORY_S = 8 * signals.DAY_S


def _detector_kinds() -> set[AlertKind]:
    return {cls.kind for module in (energy, generic, traffic, waste) for _, cls in inspect.getmembers(module)
            if inspect.isclass(cls) and isinstance(getattr(cls, "kind", None), AlertKind)}


def test_every_kind_a_detector_can_raise_is_injected_except_the_generic_value_kinds():
    kinds = _detector_kinds()
    assert {AlertKind.ENERGY_DRIFT, AlertKind.ABNORMAL_FILL_RATE} <= kinds
    assert set(INJECTED_KINDS) == kinds - GENERIC_KINDS
    assert GENERIC_KINDS <= kinds


def test_labels_of_a_long_run_include_drift_and_abnormal_fill_rate():
    config = SimConfig(sensors=30, interval_s=60, anomaly_first_after=5, anomaly_spacing=10)
    model = CityModel(config)
    labels = [label for _ in range(5 + 10 * len(INJECTED_KINDS) + 1) for label in model.next_round().labels
              if label["category"] == "anomaly"]
    by_kind = {label["kind"]: label for label in labels}
    for kind in (AlertKind.ENERGY_DRIFT, AlertKind.ABNORMAL_FILL_RATE):
        label = by_kind[kind.value]
        assert label["domain"] == EPISODES[kind][0].value and label["sensor_id"].startswith(f"sim-{label['domain']}-")
        assert label["end"] - label["start"] == pytest.approx(EPISODES[kind][1] * 60)


def _episode(kind: AlertKind):
    domain, _ = EPISODES[kind]
    spec = next(s for s in build_fleet(3, 30, "sim-") if s.domain is domain)
    plan = AnomalyPlan(3, {domain: [spec.sensor_id]}, EPISODE_START, 3600, INTERVAL_S,
                       collection_every_s={spec.sensor_id: spec.params.get("round_every_s", 0.0)})
    return spec, plan.episode(kind, spec.sensor_id, EPISODE_START)


def _readings(kind: AlertKind):
    """(clean, injected) readings of one sensor: 8 days of history, the episode, a little after it."""
    spec, episode = _episode(kind)
    start = EPISODE_START - HISTORY_S
    rounds = int((episode.end_t + 12 * INTERVAL_S - start) // INTERVAL_S)
    model = CityModel(SimConfig(seed=3, sensors=1, interval_s=INTERVAL_S, start_t=start, anomalies=False,
                                bad_traffic=False), fleet=[spec])
    clean, injected = [], []
    for _ in range(rounds):
        reading = model.next_round().readings[0]
        clean.append(reading)
        metrics = episode.apply(dict(reading.metrics), reading.t) if episode.active(reading.t) else reading.metrics
        if metrics is not None:
            injected.append(Obs(reading.sensor_id, reading.seq, reading.t, metrics))
    return spec, episode, clean, injected


def test_drift_is_slow_and_sustained():
    _, episode, clean, injected = _readings(AlertKind.ENERGY_DRIFT)
    ratios = [i.metrics["activePower"] / c.metrics["activePower"] for c, i in zip(clean, injected)
              if episode.active(c.t)]
    assert ratios[0] == pytest.approx(1.0, abs=0.01)
    assert ratios[-1] == pytest.approx(DRIFT_FACTOR, abs=0.01)
    assert all(b >= a for a, b in itertools.pairwise(ratios)), "a drift only goes one way"
    assert max(b - a for a, b in itertools.pairwise(ratios)) < 0.01, "no step a spike rule would see"


def test_abnormal_fill_rate_fills_many_times_faster_than_usual_but_stays_below_overflow():
    spec, episode, _, injected = _readings(AlertKind.ABNORMAL_FILL_RATE)
    inside = [o.metrics["fillingLevel"] for o in injected if episode.active(o.t)]
    rate_per_h = (inside[-1] - inside[0]) / ((len(inside) - 1) * INTERVAL_S / signals.HOUR_S)
    assert rate_per_h > 10 * spec.params["fill_per_h"]
    assert max(inside) < 0.9  # the overflow threshold: this episode is about the rate, not the level
    assert all(b > a for a, b in itertools.pairwise(inside))


def test_a_missed_collection_lasts_longer_than_the_bins_collection_interval():
    spec, episode = _episode(AlertKind.MISSED_COLLECTION)
    assert episode.end_t - episode.start_t == pytest.approx(MISSED_ROUNDS * spec.params["round_every_s"])


def test_waste_temperature_follows_the_day_and_stays_inside_its_declared_range():
    spec = next(s for s in build_fleet(3, 30, "sim-") if s.domain is Domain.WASTE)
    model = CityModel(SimConfig(seed=3, sensors=1, interval_s=600, start_t=EPISODE_START - 9 * signals.HOUR_S,
                                anomalies=False, bad_traffic=False), fleet=[spec])
    by_hour: dict[int, list[float]] = {}
    for _ in range(6 * 24 * 4):  # four days
        reading = model.next_round().readings[0]
        by_hour.setdefault(int(signals.local_hour(reading.t)), []).append(reading.metrics["temperature"])
    mean = {hour: sum(v) / len(v) for hour, v in by_hour.items()}
    low, high = next((lo, hi) for name, _, lo, hi in DECLARED[Domain.WASTE] if name == "temperature")
    assert all(low <= t <= high for v in by_hour.values() for t in v)
    assert mean[15] - mean[3] > 7, mean  # afternoon warmer than the small hours by ~10 °C
    assert max(mean, key=mean.get) in range(13, 18) and min(mean, key=mean.get) in (*range(6), 23)
    assert all(5 < t < 17 for t in mean.values()), "a temperate city's bin, not a fire"


def test_fire_risk_raises_temperature_and_methane_past_the_detector_limits():
    _, episode, _, injected = _readings(AlertKind.FIRE_RISK)
    last = [o for o in injected if episode.active(o.t)][-1].metrics
    assert last["temperature"] > waste.FireRisk.MAX_TEMPERATURE_C
    assert last["methaneConcentration"] > waste.FireRisk.MAX_METHANE_PPM


@pytest.mark.parametrize("kind", INJECTED_KINDS, ids=str)
def test_each_injected_kind_is_detected_by_the_workers_engine_at_a_five_minute_cadence(kind):
    spec, episode, _, injected = _readings(kind)
    profile = Profile(ranges={name: (lo, hi) for name, _, lo, hi in DECLARED[spec.domain]}, interval_s=INTERVAL_S)
    out = replay(Engine(spec.domain.value), injected, profile, until=episode.end_t + 12 * INTERVAL_S)
    # Detected = an alert of its kind opened during the episode (or shortly after, for the slow rules). Alerts
    # before it are not this test's business: real bins do overflow now and then.
    opened = [e for e in out.events if e.kind is kind and e.event_type.value == "opened"
              and episode.start_t <= e.occurred_at.timestamp() <= episode.end_t + 5 * INTERVAL_S]
    assert opened, f"{kind} not detected (alerts: {sorted({e.kind.value for e in out.events})})"
