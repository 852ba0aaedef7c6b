"""Normal signals of a city, as pure functions of (sensor, time, noise): traffic loops, energy meters, waste bins.

No I/O and no hidden state: the caller passes the random source (seeded per sensor) and, for the cumulative
energy meter, the previous total. Times are epoch seconds UTC; the city runs on Amsterdam wall time (UTC+1).
"""

from __future__ import annotations

import math
import random

DAY_S = 86_400.0
HOUR_S = 3_600.0
LOCAL_OFFSET_S = 3_600.0  # CET; daylight saving is irrelevant to load shapes at this precision


def local_hour(t: float) -> float:
    """Hour of the local day, 0 ≤ h < 24."""
    return ((t + LOCAL_OFFSET_S) % DAY_S) / HOUR_S


def is_weekend(t: float) -> bool:
    # 1970-01-01 was a Thursday: day index 0 → Thursday, so (days + 3) % 7 gives Monday = 0.
    return int((t + LOCAL_OFFSET_S) // DAY_S + 3) % 7 >= 5


def _bump(hour: float, centre: float, width_h: float) -> float:
    return math.exp(-((hour - centre) ** 2) / (2 * width_h**2))


def traffic_load(t: float) -> float:
    """Relative demand on a road, 0..~1: weekday rush hours at 08:00 and 17:30, a flatter weekend midday hump."""
    hour = local_hour(t)
    night = 0.06
    if is_weekend(t):
        return night + 0.45 * _bump(hour, 13.5, 3.0)
    return night + 0.9 * _bump(hour, 8.0, 1.1) + 0.85 * _bump(hour, 17.5, 1.4) + 0.35 * _bump(hour, 12.5, 2.5)


def traffic(t: float, rng: random.Random, capacity_vph: float, interval_s: float) -> dict[str, float]:
    """Loop detector: vehicles in the interval, occupancy fraction, mean speed (km/h) falling as the road fills."""
    load = min(1.0, traffic_load(t) * rng.uniform(0.92, 1.08))
    intensity = max(0.0, round(capacity_vph * load * interval_s / HOUR_S + rng.gauss(0, 1.0)))
    occupancy = min(1.0, max(0.0, 0.02 + 0.38 * load**1.6 + rng.gauss(0, 0.01)))
    speed = max(5.0, 50.0 * (1 - 0.45 * load**2) + rng.gauss(0, 1.5))
    return {"intensity": float(intensity), "occupancy": round(occupancy, 4), "averageVehicleSpeed": round(speed, 2)}


def household_kw(t: float) -> float:
    """A household feeder: small base load, breakfast peak, large evening peak; weekends later and flatter."""
    hour = local_hour(t)
    if is_weekend(t):
        return 0.5 + 0.9 * _bump(hour, 10.0, 2.0) + 1.6 * _bump(hour, 19.0, 2.0)
    return 0.45 + 0.9 * _bump(hour, 7.3, 0.9) + 2.0 * _bump(hour, 19.0, 1.6)


def commercial_kw(t: float) -> float:
    """An office/shop: a plateau 08:00–18:00 on weekdays, near base load at night and on Sundays."""
    hour = local_hour(t)
    if is_weekend(t):
        return 4.0 + 3.0 * _bump(hour, 13.0, 2.5)
    opening = 1 / (1 + math.exp(-(hour - 7.5) * 2.5)) - 1 / (1 + math.exp(-(hour - 18.5) * 2.5))
    return 4.0 + 26.0 * max(0.0, opening)


def energy(t: float, rng: random.Random, scale: float, commercial: bool, previous_kwh: float,
           interval_s: float) -> dict[str, float]:
    """AC meter: activePower (kW), voltage (V), current (A), powerFactor, totalActiveEnergyImport (kWh, cumulative)."""
    base = commercial_kw(t) if commercial else household_kw(t)
    power = max(0.05, scale * base * (1 + rng.gauss(0, 0.04)))
    voltage = 230.0 + rng.gauss(0, 1.2)
    power_factor = min(1.0, (0.92 if commercial else 0.96) + rng.gauss(0, 0.006))
    phases = 3.0 if commercial else 1.0
    current = power * 1000 / (voltage * power_factor * phases)
    total = previous_kwh + power * interval_s / HOUR_S
    return {"activePower": round(power, 4), "voltage": round(voltage, 2), "current": round(current, 3),
            "powerFactor": round(power_factor, 4), "totalActiveEnergyImport": round(total, 4)}


def fill_level(t: float, fill_per_h: float, round_every_s: float, round_phase_s: float) -> float:
    """Sawtooth: fills linearly, emptied on each collection round (every `round_every_s`, shifted by the phase)."""
    since_collection_s = (t - round_phase_s) % round_every_s
    return min(1.0, 0.02 + fill_per_h * since_collection_s / HOUR_S)


def waste(t: float, rng: random.Random, fill_per_h: float, round_every_s: float, round_phase_s: float,
          capacity_kg: float) -> dict[str, float]:
    """Container: fillingLevel (fraction), cargoWeight (kg), temperature (°C, diurnal), methane (ppm, with fill)."""
    level = min(1.0, max(0.0, fill_level(t, fill_per_h, round_every_s, round_phase_s) + rng.gauss(0, 0.004)))
    temperature = 11.0 + 5.0 * math.sin(math.pi * (local_hour(t) - 9) / 12) + rng.gauss(0, 0.4)
    methane = max(0.0, 40.0 + 90.0 * level + rng.gauss(0, 6.0))
    return {"fillingLevel": round(level, 4), "cargoWeight": round(level * capacity_kg, 2),
            "temperature": round(temperature, 2), "methaneConcentration": round(methane, 1)}
