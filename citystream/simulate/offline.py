"""The simulated city judged offline (pure): every round of `CityModel` through the anomaly worker's own engine,
per sensor with its register profile and the worker's timer ticks, scored against the run's labels exactly as
`citystream eval --labels` scores a live run. No Kafka, no database: `make run`'s first hour in about a second.

What it leaves out of the live path: the gate (fleet readings are all within their declared ranges and bad
traffic is refused before the worker, so neither reaches the detectors) and arrival delays (a reading is judged
at its sim time, the timer ticks on the sim clock).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from citystream.simulate.city import DECLARED
from citystream.simulate.model import CityModel, SimConfig
from schemas.alerts import AlertEventType
from services.anomaly.detectors import Obs, Profile
from services.anomaly.engine import Engine
from services.anomaly.labels import Score, score

TICK_S = 5.0  # the worker's default timer interval


@dataclass
class OfflineRun:
    labels: list[dict]
    opened: list[dict]  # AlertEvent-shaped dicts of the `opened` events (sensor_id, kind, event_type, occurred_at)
    readings: int

    def score(self, grace_s: float = 600.0) -> Score:
        return score(self.labels, self.opened, grace_s)


def live_config(seed: int = 7, sensors: int = 300, rate: float = 20.0) -> SimConfig:
    """The simulator as `make run` starts it (`--rate 20`, the CLI's defaults: 8 normal rounds, then one anomaly
    of every kind every 2 rounds, then one every 30)."""
    return SimConfig(seed=seed, sensors=sensors, interval_s=sensors / rate, anomaly_first_after=8,
                     anomaly_opening_spacing=2, anomaly_spacing=30, bad_traffic=False)


def run(config: SimConfig, duration_s: float, tick_s: float = TICK_S) -> OfflineRun:
    model = CityModel(config)
    engines, states, profiles = {}, {}, {}
    for spec in model.fleet:
        domain = spec.domain.value
        if domain not in engines:
            engines[domain] = Engine(domain, with_rollups=False)
            ranges = {name: (lo, hi) for name, _, lo, hi in DECLARED[spec.domain]}
            profiles[domain] = Profile(ranges=ranges, interval_s=config.interval_s)
        states[spec.sensor_id] = (engines[domain], engines[domain].new_state(), profiles[domain])
    labels = [{"category": "run", "seed": config.seed, "interval_s": config.interval_s, "start": config.start_t,
               "sensor_ids": [spec.sensor_id for spec in model.fleet]}]
    opened: list[dict] = []
    readings = 0
    rounds = int(duration_s // config.interval_s)
    next_tick = config.start_t + tick_s

    def keep(events, sensor_id: str) -> None:
        opened.extend({"sensor_id": sensor_id, "kind": e.kind.value, "event_type": "opened",
                       "occurred_at": e.occurred_at.timestamp()} for e in events
                      if e.event_type == AlertEventType.OPENED)

    for _ in range(rounds):
        rnd = model.next_round()
        labels.extend(label for label in rnd.labels if label["category"] == "anomaly")
        for reading in rnd.readings:
            while next_tick <= reading.t:  # the worker's timer, for every sensor, on the sim clock
                for sensor_id, (engine, state, profile) in states.items():
                    if state["seq"] >= 0 and engine.tick_due(state, next_tick, profile):
                        keep(engine.tick(state, sensor_id, next_tick, profile).events, sensor_id)
                next_tick += tick_s
            engine, state, profile = states[reading.sensor_id]
            outcome = engine.observe(state, Obs(reading.sensor_id, reading.seq, reading.t, reading.metrics),
                                     profile)
            keep(outcome.events, reading.sensor_id)
            readings += 1
    labels.append({"category": "end", "t": config.start_t + rounds * config.interval_s})
    return OfflineRun(labels, opened, readings)


CITY_HOUR_SEEDS = (7, 1, 2)  # 7: `make run`'s seed


def city_hour_table(seeds: tuple[int, ...] = CITY_HOUR_SEEDS, duration_s: float = 3600.0) -> list[dict]:
    """`make run`'s first hour per seed, judged offline and scored as `citystream eval --labels` scores a live run
    (a table of `citystream eval`)."""
    rows = []
    for seed in seeds:
        started = time.perf_counter()
        hour = run(live_config(seed=seed), duration_s)
        result = hour.score()
        missed = sorted(k for k, v in result.kinds.items() if v.labels > v.detected)
        false = sorted(k for k, v in result.kinds.items() if v.alerts > v.true_alerts)
        rows.append({"seed": seed, "readings": hour.readings, "episodes": result.labels, "found": result.detected,
                     "unfinished": result.unfinished, "alerts": result.alerts, "true alerts": result.true_alerts,
                     "precision": result.precision, "recall": result.recall,
                     "median delay (s)": result.median_delay_s, "missed": missed, "false": false,
                     "us/reading": 1e6 * (time.perf_counter() - started) / max(hour.readings, 1)})
    return rows
