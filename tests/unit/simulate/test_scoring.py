"""The label scorer: per-kind recall, precision and delay, and the wall-time span of a replayed episode."""

from __future__ import annotations

from services.anomaly.labels import score

RUN = {"category": "run", "sensor_ids": ["s-1", "s-2", "s-3"], "start": 1000.0}


def _episode(sensor: str, kind: str, start: float, end: float, **wall) -> dict:
    return {"category": "anomaly", "sensor_id": sensor, "kind": kind, "start": start, "end": end, **wall}


def _opened(sensor: str, kind: str, at: float, event_type: str = "opened") -> dict:
    return {"sensor_id": sensor, "kind": kind, "event_type": event_type, "occurred_at": at}


def test_per_kind_recall_precision_and_delay():
    labels = [RUN, _episode("s-1", "overflow", 1100, 1200), _episode("s-2", "overflow", 1300, 1400),
              _episode("s-3", "energy_spike", 1100, 1120)]
    events = [_opened("s-1", "overflow", 1130), _opened("s-1", "overflow", 1130, "updated"),
              _opened("s-2", "fire_risk", 1310), _opened("s-3", "energy_spike", 1500),
              _opened("elsewhere", "overflow", 1300)]  # not a simulated sensor: ignored
    result = score(labels, events)
    assert (result.labels, result.detected, result.alerts, result.true_alerts) == (3, 1, 3, 1)
    overflow = result.kinds["overflow"]
    assert (overflow.labels, overflow.detected, overflow.recall, overflow.precision) == (2, 1, 0.5, 1.0)
    assert overflow.delays_s == (30.0,)
    assert result.kinds["fire_risk"].precision == 0.0 and result.kinds["fire_risk"].labels == 0
    assert result.kinds["energy_spike"].recall == 0.0  # alerted after the episode and outside the grace
    assert score(labels, events, grace_s=400).kinds["energy_spike"].recall == 1.0


def test_an_alert_judged_on_arrival_time_matches_the_wall_span_of_a_replayed_episode():
    # Replayed 5× faster than real time: the episode's sim span is long past when it is sent.
    label = _episode("s-2", "silence", 1100, 1200, wall_start=5000.0, wall_end=5020.0)
    result = score([RUN, label], [_opened("s-2", "silence", 5009.0)])
    assert result.detected == 1 and result.delays_s == (9.0,)
    assert score([RUN, {k: v for k, v in label.items() if not k.startswith("wall")}],
                 [_opened("s-2", "silence", 5009.0)]).detected == 0


def test_an_episode_still_running_at_the_end_is_scored_from_its_decided_time_found_or_missed():
    end = {"category": "end", "t": 2000.0}
    labels = [RUN, end,
              # ran long enough before the end: scored, found or not
              _episode("s-1", "congestion", 1500, 2600, decided=1800), _episode("s-2", "incident", 1500, 2400,
                                                                                decided=1800),
              # started too close to the end: pending, found or not
              _episode("s-3", "overflow", 1950, 2500, decided=2250), _episode("s-3", "energy_drift", 1100, 9000,
                                                                              decided=9000)]
    events = [_opened("s-1", "congestion", 1520), _opened("s-3", "overflow", 1960)]
    result = score(labels, events)
    assert (result.labels, result.detected, result.unfinished) == (2, 1, 2)
    assert result.kinds["incident"].recall == 0.0  # missed, although still running: its decided time had come
    # The alert of a pending episode is still a true alert: it is inside an episode of its kind.
    assert (result.alerts, result.true_alerts) == (2, 2)
