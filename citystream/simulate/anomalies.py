"""Labelled anomaly injection: which sensor misbehaves how, when, for how long, and what it then reports.

One episode per anomaly kind the detectors know (schemas.alerts.AlertKind), scheduled deterministically for a seed
and cycled for as long as the simulation runs. Each episode is also a label: (sensor_id, kind, start, end).

Not injected on their own: the generic value detectors' kinds (GENERIC_KINDS). `out_of_range` can never reach the
detectors through the gate (it refuses readings outside the declared range), and `anomalous_value` /
`rapid_change` are what most of the episodes below also look like, so they fire beside them rather than alone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from schemas.alerts import AlertKind
from schemas.common import Domain

# kind → (domain, duration in reporting intervals). Durations are long enough for each detector's own rule
# (a flatline needs 12 equal readings, silence k=3 missed intervals); a missed collection lasts at least
# MISSED_ROUNDS of the bin's own collection interval (the detector alerts once a bin stays full for longer than
# the interval it learned between emptyings).
EPISODES: dict[AlertKind, tuple[Domain, int]] = {
    AlertKind.CONGESTION: (Domain.TRAFFIC, 40),
    AlertKind.INCIDENT: (Domain.TRAFFIC, 20),
    AlertKind.STUCK_SENSOR: (Domain.TRAFFIC, 40),
    AlertKind.ENERGY_SPIKE: (Domain.ENERGY, 8),
    AlertKind.ENERGY_OUTAGE: (Domain.ENERGY, 30),
    # Drift is judged against a full week of hour-of-week history (and 100 readings after it): long and slow.
    AlertKind.ENERGY_DRIFT: (Domain.ENERGY, 400),
    AlertKind.SILENCE: (Domain.ENERGY, 40),
    AlertKind.OVERFLOW: (Domain.WASTE, 40),
    AlertKind.ABNORMAL_FILL_RATE: (Domain.WASTE, 12),
    AlertKind.FIRE_RISK: (Domain.WASTE, 20),
    AlertKind.MISSED_COLLECTION: (Domain.WASTE, 240),
}
INJECTED_KINDS: tuple[AlertKind, ...] = tuple(EPISODES)
GENERIC_KINDS: frozenset[AlertKind] = frozenset({AlertKind.OUT_OF_RANGE, AlertKind.ANOMALOUS_VALUE,
                                                 AlertKind.RAPID_CHANGE})
MISSED_ROUNDS = 1.5
DRIFT_FACTOR = 1.6  # a drifting feeder ends the episode drawing 60 % more than its usual load
# When an episode still running at the end of a run is judged (the label's `decided`): a fast kind once it has
# run DECIDED_AFTER_READINGS readings (the slowest fast rule, a flatline, needs 12), found or not; a slow kind only
# at its end, because its rule cannot decide earlier: a drift is judged against a full week of hour-of-week
# history, a missed collection once the bin stayed full longer than its usual emptying interval (a day or more).
DECIDED_AFTER_READINGS = 20
SLOW_KINDS: frozenset[AlertKind] = frozenset({AlertKind.ENERGY_DRIFT, AlertKind.MISSED_COLLECTION})


@dataclass
class Episode:
    """One injected anomaly; `frozen` remembers the first values for a stuck sensor."""

    kind: AlertKind
    sensor_id: str
    domain: Domain
    start_t: float
    end_t: float
    decided_t: float  # from then on the episode is scored even when still running (DECIDED_AFTER_READINGS)
    frozen: dict[str, float] | None = field(default=None, repr=False)

    def active(self, t: float) -> bool:
        return self.start_t <= t < self.end_t

    def label(self) -> dict:
        return {"category": "anomaly", "sensor_id": self.sensor_id, "kind": self.kind.value, "domain": self.domain.value,
                "start": self.start_t, "end": self.end_t, "decided": self.decided_t}

    def apply(self, metrics: dict[str, float], t: float) -> dict[str, float] | None:
        """The metrics the sensor reports instead of `metrics` at `t`, or None when it stays silent."""
        ramp = min(1.0, (t - self.start_t) / max(1.0, (self.end_t - self.start_t) / 4))
        kind = self.kind
        if kind is AlertKind.SILENCE:
            return None
        if kind is AlertKind.STUCK_SENSOR:
            if self.frozen is None:
                self.frozen = dict(metrics)
            return dict(self.frozen)
        if kind is AlertKind.CONGESTION:
            return {**metrics, "averageVehicleSpeed": round(max(3.0, metrics["averageVehicleSpeed"] * 0.25), 2),
                    "occupancy": round(max(metrics["occupancy"], 0.6), 4)}
        if kind is AlertKind.INCIDENT:
            return {**metrics, "intensity": 0.0, "averageVehicleSpeed": round(max(2.0, metrics["averageVehicleSpeed"]
                                                                                * 0.1), 2)}
        if kind is AlertKind.ENERGY_SPIKE:
            power = round(metrics["activePower"] * 4.0, 4)
            return {**metrics, "activePower": power, "current": round(metrics["current"] * 4.0, 3)}
        if kind is AlertKind.ENERGY_OUTAGE:
            return {**metrics, "activePower": 0.0, "current": 0.0, "voltage": 0.0}
        if kind is AlertKind.ENERGY_DRIFT:
            # A slow, sustained rise (a failing appliance, an unmetered connection): no step a spike rule sees.
            progress = min(1.0, (t - self.start_t) / max(1.0, self.end_t - self.start_t))
            factor = 1.0 + (DRIFT_FACTOR - 1.0) * progress
            return {**metrics, "activePower": round(metrics["activePower"] * factor, 4),
                    "current": round(metrics["current"] * factor, 3)}
        if kind is AlertKind.OVERFLOW:
            level = min(1.0, max(metrics["fillingLevel"], 0.88 + 0.12 * ramp))
            return {**metrics, "fillingLevel": round(level, 4)}
        if kind is AlertKind.ABNORMAL_FILL_RATE:
            # Emptied, then filled in hours what usually takes days (e.g. construction waste dumped in it); it
            # stops short of the overflow threshold, so this episode is about the rate, not the level.
            progress = min(1.0, (t - self.start_t) / max(1.0, self.end_t - self.start_t))
            level = 0.05 + 0.8 * progress
            return {**metrics, "fillingLevel": round(level, 4),
                    "cargoWeight": round(metrics["cargoWeight"] * level / max(0.01, metrics["fillingLevel"]), 2)}
        if kind is AlertKind.FIRE_RISK:
            return {**metrics, "temperature": round(metrics["temperature"] + 60.0 * ramp, 2),
                    "methaneConcentration": round(metrics["methaneConcentration"] + 6000.0 * ramp, 1)}
        if kind is AlertKind.MISSED_COLLECTION:
            # The round does not come: the bin is never emptied, so it keeps the highest level it has reached (it
            # fills as usual until its collection is due, then stays there). No jump: a missed round is no dumping.
            level = max(metrics["fillingLevel"], (self.frozen or {}).get("fillingLevel", 0.0))
            self.frozen = {"fillingLevel": level}
            return {**metrics, "fillingLevel": round(level, 4)}
        return metrics


class AnomalyPlan:
    """An endless, seed-determined schedule: one episode every `spacing_s` (the first cycle every
    `opening_spacing_s` when given), kinds in a shuffled cycle.

    A sensor carries at most one episode at a time, so each label has exactly one cause.
    """

    def __init__(self, seed: int, sensors_by_domain: dict[Domain, list[str]], first_t: float, spacing_s: float,
                 interval_s: float, opening_spacing_s: float | None = None,
                 collection_every_s: dict[str, float] | None = None, silence_min_s: float = 0.0) -> None:
        self._rng = random.Random(f"anomalies/{seed}")
        self._sensors = {domain: sorted(ids) for domain, ids in sensors_by_domain.items() if ids}
        self._next_t = first_t
        self._spacing_s = spacing_s
        # The first cycle (one episode of every kind) may come faster, so a demo shows every kind early on.
        self._opening_left = len(INJECTED_KINDS) if opening_spacing_s else 0
        self._opening_spacing_s = opening_spacing_s or spacing_s
        self._interval_s = interval_s
        self._collection_every_s = collection_every_s or {}  # waste sensor → seconds between its collections
        self._silence_min_s = silence_min_s  # a silence lasts at least this long (sim seconds): see SimConfig
        self._cycle: list[AlertKind] = []
        self.active: dict[str, Episode] = {}

    def advance(self, t: float) -> list[Episode]:
        """Start every episode due by sim time `t`; return the new ones (their labels are final)."""
        for sensor_id in [s for s, e in self.active.items() if e.end_t <= t]:
            del self.active[sensor_id]
        started = []
        while self._next_t <= t:
            episode = self._schedule(self._next_t)
            if episode is not None:
                self.active[episode.sensor_id] = episode
                started.append(episode)
            self._opening_left = max(0, self._opening_left - 1)
            self._next_t += self._opening_spacing_s if self._opening_left else self._spacing_s
        return started

    def _schedule(self, start_t: float) -> Episode | None:
        if not self._cycle:
            self._cycle = list(INJECTED_KINDS)
            self._rng.shuffle(self._cycle)
        kind = self._cycle.pop()
        domain, _ = EPISODES[kind]
        free = [s for s in self._sensors.get(domain, []) if s not in self.active]
        if not free:
            return None
        return self.episode(kind, self._rng.choice(free), start_t)

    def episode(self, kind: AlertKind, sensor_id: str, start_t: float) -> Episode:
        """The episode of `kind` on `sensor_id` from `start_t`, lasting as long as EPISODES (and the bin) say."""
        domain, intervals = EPISODES[kind]
        duration_s = intervals * self._interval_s
        if kind is AlertKind.MISSED_COLLECTION:
            duration_s = max(duration_s, MISSED_ROUNDS * self._collection_every_s.get(sensor_id, 0.0))
        if kind is AlertKind.SILENCE:
            duration_s = max(duration_s, self._silence_min_s)
        end_t = start_t + duration_s
        decided_t = end_t if kind in SLOW_KINDS else min(end_t, start_t + DECIDED_AFTER_READINGS * self._interval_s)
        return Episode(kind, sensor_id, domain, start_t, end_t, decided_t)
