"""The city as a deterministic stream of rounds: every sensor reports once per round, anomalies and bad traffic
mixed in. Same config (seed, size, start) → the same readings, payloads and labels, byte for byte. No I/O.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

from citystream.simulate import signals
from citystream.simulate.anomalies import AnomalyPlan, Episode
from citystream.simulate.badtraffic import EXPECTED_REASON, BadActor, BadKind, build_bad_actors
from citystream.simulate.city import SensorSpec, build_fleet
from schemas.common import Domain


@dataclass(frozen=True)
class SimConfig:
    seed: int = 7
    sensors: int = 300
    interval_s: float = 15.0  # sim seconds between two readings of one sensor
    start_t: float = 1_767_600_000.0  # sim epoch seconds of round 0
    prefix: str = "sim-"
    anomalies: bool = True
    anomaly_first_after: int = 20  # rounds of normal behaviour before the first episode
    anomaly_spacing: int = 30  # rounds between two episode starts
    anomaly_opening_spacing: int | None = None  # rounds between the starts of the first cycle (every kind once)
    bad_traffic: bool = True
    suspend_at_round: int = 10
    # A silence lasts at least this many sim seconds. The platform judges silence on arrival (wall) time, so a run
    # whose clock goes faster than the wall clock stretches its silences to stay silent long enough on the wall.
    silence_min_s: float = 0.0


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


def seq_for(t: float) -> int:
    """The per-sensor sequence number: milliseconds of sim time. Monotonic per sensor, also across restarts,
    so a replayed reading keeps its seq (and is deduplicated downstream) and a new run never collides with an old one."""
    return round(t * 1000)


@dataclass(frozen=True)
class Reading:
    sensor_id: str
    seq: int
    t: float
    metrics: dict[str, float]

    def payload(self) -> dict:
        """RawReading-shaped dict, as sent to `POST /v1/readings`."""
        return {"sensor_id": self.sensor_id, "seq": self.seq, "observed_at": iso(self.t), "metrics": self.metrics}


@dataclass(frozen=True)
class BadSend:
    actor: BadActor
    payloads: list[dict]


@dataclass
class Round:
    index: int
    t: float
    readings: list[Reading] = field(default_factory=list)
    bad: list[BadSend] = field(default_factory=list)
    suspend: list[str] = field(default_factory=list)  # sensors the register must suspend at this round
    labels: list[dict] = field(default_factory=list)  # labels that start in this round


def sensor_stream(seed: int, sensor_id: str, prefix: str) -> random.Random:
    """A sensor's random stream, drawn under its id with the run's prefix read as the default "sim-". `--prefix`
    only names the sensors; the seed alone decides what the city reports, so a run under another prefix (a test, a
    second simulator beside `make run`) replays the same city as the offline tools."""
    name = f"sim-{sensor_id.removeprefix(prefix)}" if sensor_id.startswith(prefix) else sensor_id
    return random.Random(f"{seed}/{name}")


class CityModel:
    """Generates rounds in order; keeps the little state the city has (meter totals, running episodes)."""

    def __init__(self, config: SimConfig, fleet: list[SensorSpec] | None = None) -> None:
        self.config = config
        self.fleet: list[SensorSpec] = fleet or build_fleet(config.seed, config.sensors, config.prefix)
        self.bad_actors: list[BadActor] = build_bad_actors(config.prefix) if config.bad_traffic else []
        self._rngs = {spec.sensor_id: sensor_stream(config.seed, spec.sensor_id, config.prefix)
                      for spec in (*self.fleet, *(actor.spec for actor in self.bad_actors))}
        self._meter_kwh = {s.sensor_id: s.params.get("meter_start_kwh", 0.0) for s in self.fleet}
        by_domain: dict[Domain, list[str]] = {}
        for spec in self.fleet:
            by_domain.setdefault(spec.domain, []).append(spec.sensor_id)
        interval = config.interval_s
        self.plan = AnomalyPlan(config.seed, by_domain, config.start_t + config.anomaly_first_after * interval,
                                config.anomaly_spacing * interval, interval,
                                config.anomaly_opening_spacing * interval if config.anomaly_opening_spacing else None,
                                {s.sensor_id: s.params["round_every_s"] for s in self.fleet if s.domain is Domain.WASTE},
                                silence_min_s=config.silence_min_s)
        self._next_round = 0

    def normal_metrics(self, spec: SensorSpec, t: float) -> dict[str, float]:
        rng, p, interval = self._rngs[spec.sensor_id], spec.params, self.config.interval_s
        if spec.domain is Domain.TRAFFIC:
            return signals.traffic(t, rng, p["capacity_vph"], interval)
        if spec.domain is Domain.ENERGY:
            return signals.energy(t, rng, p["scale"], bool(p["commercial"]), self._meter_kwh[spec.sensor_id],
                                  interval)
        return signals.waste(t, rng, p["fill_per_h"], p["round_every_s"], p["round_phase_s"], p["capacity_kg"])

    def next_round(self) -> Round:
        k = self._next_round
        self._next_round += 1
        cfg = self.config
        t_round = cfg.start_t + k * cfg.interval_s
        result = Round(k, t_round)
        if k == 0:
            result.labels.extend(self._bad_labels(t_round, from_start=True))
        if cfg.anomalies:
            result.labels.extend(episode.label() for episode in self.plan.advance(t_round))
        step = cfg.interval_s / max(1, len(self.fleet))
        for i, spec in enumerate(self.fleet):
            t = round(t_round + i * step, 3)  # sensors spread evenly over the round, so load is smooth
            metrics = self.normal_metrics(spec, t)
            episode: Episode | None = self.plan.active.get(spec.sensor_id) if cfg.anomalies else None
            if episode is not None and episode.active(t):
                metrics = episode.apply(metrics, t)
                if metrics is None:
                    continue
            if spec.domain is Domain.ENERGY:
                self._meter_kwh[spec.sensor_id] = metrics["totalActiveEnergyImport"]
            result.readings.append(Reading(spec.sensor_id, seq_for(t), t, metrics))
        for actor in self.bad_actors:
            t = round(t_round + cfg.interval_s / 2, 3)
            spec = actor.spec
            metrics = signals.traffic(t, self._rngs[spec.sensor_id], spec.params["capacity_vph"], cfg.interval_s)
            result.bad.append(BadSend(actor, actor.payloads(seq_for(t), iso(t), metrics)))
        if cfg.bad_traffic and k == cfg.suspend_at_round:
            result.suspend.extend(a.spec.sensor_id for a in self.bad_actors if a.kind is BadKind.SUSPENDED)
            result.labels.extend(self._bad_labels(t_round, from_start=False))
        return result

    def _bad_labels(self, t: float, *, from_start: bool) -> list[dict]:
        """Bad traffic as labels too: who, what reason the gate should give, and from when (end open)."""
        if from_start:  # the expired actor's label is written by the runner: its expiry is a wall-clock instant
            chosen = [a for a in self.bad_actors if a.kind not in (BadKind.SUSPENDED, BadKind.EXPIRED)]
        else:
            chosen = [a for a in self.bad_actors if a.kind is BadKind.SUSPENDED]
        return [{"category": "bad_traffic", "sensor_id": a.spec.sensor_id, "kind": a.kind.value,
                 "expected_reason": EXPECTED_REASON[a.kind].value, "start": t, "end": None} for a in chosen]
