"""Deterministic labelled city scenarios (traffic, energy, waste, silence) for tests and `citystream eval`.

Each scenario is three weeks of 5-minute readings of a plausible normal signal, with one labelled anomaly
injected in the last week (none for the `*_normal` ones). Same name + seed → the same readings, always.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from services.anomaly.detectors import Obs

START_S = 1_767_571_200  # 2026-01-05 00:00 UTC, a Monday
INTERVAL_S = 300
DAY_S = 86_400
HOUR_S = 3600


@dataclass
class Scenario:
    name: str
    domain: str
    kind: str | None  # the AlertKind that should fire, None for a normal scenario
    primary: str  # the metric a single-series baseline detector watches
    readings: list[Obs]
    windows: list[tuple[float, float]] = field(default_factory=list)  # labelled anomaly spans, epoch seconds
    interval_s: float = INTERVAL_S


def _traffic(t: float, rng: random.Random) -> dict[str, float]:
    hour = (t % DAY_S) / HOUR_S
    weekday = ((t - START_S) // DAY_S) % 7 < 5
    peaks = math.exp(-((hour - 8) ** 2) / 3) + math.exp(-((hour - 17) ** 2) / 4)
    load = (0.15 + (0.85 if weekday else 0.45) * peaks) * (0.6 + 0.4 * math.sin(math.pi * hour / 24))
    intensity = max(0.0, 20 + 120 * load + rng.gauss(0, 4))
    return {"intensity": round(intensity), "occupancy": min(1.0, max(0.0, 0.04 + 0.22 * load + rng.gauss(0, 0.01))),
            "averageVehicleSpeed": max(5.0, 52 - 14 * load + rng.gauss(0, 2.0))}


def _energy(t: float, rng: random.Random) -> dict[str, float]:
    hour = (t % DAY_S) / HOUR_S
    weekday = ((t - START_S) // DAY_S) % 7 < 5
    shape = max(0.0, math.sin(math.pi * (hour - 6) / 14)) if 6 <= hour <= 20 else 0.0
    power = 18 + (14 if weekday else 5) * shape + rng.gauss(0, 0.8)
    return {"activePower": power, "voltage": 230 + rng.gauss(0, 1.0), "powerFactor": 0.95 + rng.gauss(0, 0.005)}


def _waste(t: float, rng: random.Random) -> dict[str, float]:
    hour = (t % DAY_S) / HOUR_S
    cycle = ((t - START_S) % (36 * HOUR_S)) / HOUR_S  # emptied every 36 hours
    return {"fillingLevel": round(min(1.0, 0.03 + 0.02 * cycle + rng.gauss(0, 0.004)), 3),
            "temperature": 12 + 4 * math.sin(math.pi * (hour - 9) / 12) + rng.gauss(0, 0.4),
            "methaneConcentration": max(0.0, 60 + rng.gauss(0, 8))}


NORMAL: dict[str, tuple[Callable[[float, random.Random], dict[str, float]], str]] = {
    "traffic": (_traffic, "averageVehicleSpeed"), "energy": (_energy, "activePower"),
    "waste": (_waste, "temperature"),
}

def FREEZE(m: dict[str, float], t: float, t0: float) -> dict[str, float]:  # noqa: N802 - a marker, see generate
    """Marker mutation: the sensor repeats its first reading of the episode (handled in `generate`)."""
    return m


# name → (domain, kind, primary metric override, start offset from day 16 00:00 in hours, duration h, mutate)
Mutation = Callable[[dict[str, float], float, float], dict[str, float] | None]  # (metrics, t, t0) → new or None
SPECS: dict[str, tuple[str, str | None, str | None, float, float, Mutation | None]] = {
    "traffic_normal": ("traffic", None, None, 0, 0, None),
    "traffic_congestion": ("traffic", "congestion", None, 8.0, 1.0,
                           lambda m, t, t0: {**m, "averageVehicleSpeed": 12.0, "occupancy": 0.65}),
    "traffic_incident": ("traffic", "incident", "intensity", 11.0, 0.75, lambda m, t, t0: {**m, "intensity": 2.0}),
    "traffic_surge": ("traffic", "rapid_change", "intensity", 20.0, 0.5, lambda m, t, t0: {**m, "intensity": 600.0}),
    "traffic_silence": ("traffic", "silence", None, 13.0, 2.0, lambda m, t, t0: None),
    # As the simulator's stuck loop: every metric keeps the values of the episode's first reading.
    "traffic_stuck": ("traffic", "stuck_sensor", "averageVehicleSpeed", 2.0, 4.0, FREEZE),
    "energy_normal": ("energy", None, None, 0, 0, None),
    "energy_spike": ("energy", "energy_spike", None, 14.0, 0.5,
                     lambda m, t, t0: {**m, "activePower": m["activePower"] * 2.5}),
    "energy_outage": ("energy", "energy_outage", None, 10.0, 1.0,
                      lambda m, t, t0: {**m, "activePower": 0.0, "voltage": 0.0}),
    "energy_voltage_sag": ("energy", "anomalous_value", "voltage", 9.0, 1.0, lambda m, t, t0: {**m, "voltage": 207.0}),
    "energy_drift": ("energy", "energy_drift", None, 0.0, 96.0,
                     lambda m, t, t0: {**m, "activePower": m["activePower"] + 3.0 * min(1.0, (t - t0) / (2 * DAY_S))}),
    "waste_normal": ("waste", None, None, 0, 0, None),
    "waste_overflow": ("waste", "overflow", "fillingLevel", 6.0, 8.0,
                       lambda m, t, t0: {**m, "fillingLevel": min(1.0, m["fillingLevel"] + 0.12 * (t - t0) / HOUR_S)}),
    "waste_fill_rate": ("waste", "abnormal_fill_rate", "fillingLevel", 19.0, 1.0,
                        lambda m, t, t0: {**m, "fillingLevel": min(1.0, m["fillingLevel"] + 0.5 * (t - t0) / HOUR_S)}),
    "waste_fire": ("waste", "fire_risk", None, 15.0, 1.0,
                   lambda m, t, t0: {**m, "temperature": m["temperature"] + 55 * min(1.0, (t - t0) / (0.5 * HOUR_S))}),
    "waste_methane": ("waste", "fire_risk", "methaneConcentration", 3.0, 1.0,
                      lambda m, t, t0: {**m, "methaneConcentration": 7000.0}),
    "waste_missed_collection": ("waste", "missed_collection", "fillingLevel", 12.0, 60.0,
                                lambda m, t, t0: {**m, "fillingLevel": min(1.0, 0.75 + 0.02 * (t - t0) / HOUR_S)}),
}


def generate(name: str, seed: int = 0, days: int = 21) -> Scenario:
    """Scenario `name` (see SPECS), deterministic for a given seed."""
    domain, kind, primary, offset_h, duration_h, mutate = SPECS[name]
    normal, default_primary = NORMAL[domain]
    rng = random.Random(f"{name}/{seed}")
    t0 = START_S + 16 * DAY_S + offset_h * HOUR_S
    t1 = t0 + duration_h * HOUR_S
    readings: list[Obs] = []
    frozen: dict[str, float] | None = None
    for i in range(days * DAY_S // INTERVAL_S):
        t = START_S + i * INTERVAL_S
        metrics: dict[str, float] | None = normal(t, rng)
        if mutate is not None and t0 <= t < t1:
            if mutate is FREEZE:
                frozen = frozen or dict(metrics)
                metrics = dict(frozen)
            else:
                metrics = mutate(metrics, t, t0)
        if metrics is not None:
            readings.append(Obs(f"sim-{name.replace('_', '-')}", i, float(t), metrics))
    windows = [(t0, t1)] if kind else []
    return Scenario(name, domain, kind, primary or default_primary, readings, windows)
