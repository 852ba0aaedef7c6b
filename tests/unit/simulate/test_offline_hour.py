"""`make run`'s first hour, judged offline: the simulated city (seed 7, 300 sensors, a reading every 15 s, one
anomaly of every kind in the first minutes) through the worker's engine, scored as `citystream eval --labels`."""

from __future__ import annotations

from citystream.simulate import offline


def test_first_hour_of_make_run_is_found_with_precision_and_recall_of_at_least_0_9():
    run = offline.run(offline.live_config(seed=7), 3600)
    result = run.score()
    assert run.readings > 70_000
    assert result.labels >= 12, "every kind but the long ones ends within the hour"
    assert result.unfinished >= 1, "a missed collection lasts days: still running after an hour"
    assert result.precision >= 0.9, result.kinds
    assert result.recall >= 0.9, result.kinds
    assert result.median_delay_s is not None and result.median_delay_s <= 60.0


def test_an_episode_still_running_at_the_end_is_scored_once_found_and_pending_otherwise():
    labels = [{"category": "run", "sensor_ids": ["sim-waste-0001", "sim-waste-0002"], "start": 0.0},
              {"category": "anomaly", "sensor_id": "sim-waste-0001", "kind": "missed_collection", "start": 100.0,
               "end": 10_000.0},
              {"category": "anomaly", "sensor_id": "sim-waste-0002", "kind": "missed_collection", "start": 100.0,
               "end": 10_000.0},
              {"category": "end", "t": 3600.0}]
    alert = {"sensor_id": "sim-waste-0001", "kind": "missed_collection", "event_type": "opened",
             "occurred_at": 200.0}
    found = offline.score(labels, [alert])
    assert (found.labels, found.detected, found.unfinished, found.alerts, found.true_alerts) == (1, 1, 1, 1, 1)
    # Without the `end` line (a run that did not stop cleanly) every episode is scored, as before.
    everything = offline.score(labels[:-1], [alert])
    assert (everything.labels, everything.detected, everything.unfinished) == (2, 1, 0)


def test_alerts_after_the_run_stopped_are_left_out():
    labels = [{"category": "run", "sensor_ids": ["sim-energy-0001"], "start": 0.0}, {"category": "end", "t": 3600.0}]
    silent = {"sensor_id": "sim-energy-0001", "kind": "silence", "event_type": "opened", "occurred_at": 3700.0}
    assert offline.score(labels, [silent]).alerts == 0
    assert offline.score(labels[:1], [silent]).alerts == 1
