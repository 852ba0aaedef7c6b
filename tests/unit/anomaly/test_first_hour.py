"""A sensor's first hour at the simulator's 15 s cadence: the domain rules judge from the first minutes (a spike,
a stalled road, a fire, a stuck loop) and one anomaly raises one alert of its own kind."""

from __future__ import annotations

import random

from schemas.alerts import AlertEventType
from services.anomaly.detectors import Obs, Profile
from services.anomaly.engine import Engine

START = 1_767_610_800.0  # a Monday 11:00 UTC
STEP_S = 15.0
PROFILE = Profile(interval_s=STEP_S)


def feed(domain: str, readings: list[dict[str, float]]) -> list[tuple[int, str]]:
    engine = Engine(domain, with_rollups=False)
    state, found = engine.new_state(), []
    for i, metrics in enumerate(readings):
        outcome = engine.observe(state, Obs("sensor-1", i, START + i * STEP_S, metrics), PROFILE)
        found += [(i, e.kind.value) for e in outcome.events if e.event_type == AlertEventType.OPENED]
    return found


def traffic(n: int, seed: int = 1) -> list[dict[str, float]]:
    rng = random.Random(seed)  # a quiet road: about 3 vehicles per 15 s
    return [{"intensity": float(max(0, round(3 + rng.gauss(0, 1.5)))), "occupancy": 0.12 + rng.gauss(0, 0.01),
             "averageVehicleSpeed": 45 + rng.gauss(0, 1.5)} for _ in range(n)]


def energy(n: int, seed: int = 2) -> list[dict[str, float]]:
    rng = random.Random(seed)
    return [{"activePower": 12 * (1 + rng.gauss(0, 0.04)), "voltage": 230 + rng.gauss(0, 1.2)} for _ in range(n)]


def waste(n: int, seed: int = 3) -> list[dict[str, float]]:
    rng = random.Random(seed)
    return [{"fillingLevel": round(0.3 + 0.0001 * i + rng.gauss(0, 0.004), 4), "temperature": 11 + rng.gauss(0, 0.4),
             "methaneConcentration": 60 + rng.gauss(0, 6)} for i in range(n)]


def test_an_hour_of_normal_readings_raises_nothing():
    assert feed("traffic", traffic(240)) == []
    assert feed("energy", energy(240)) == []
    assert feed("waste", waste(240)) == []


def test_a_stalled_road_with_few_vehicles_is_an_incident_not_a_congestion():
    readings = traffic(120)
    for r in readings[60:80]:  # no vehicle passes, the last ones crawl
        r.update(intensity=0.0, averageVehicleSpeed=4.0)
    found = feed("traffic", readings)
    assert found[0] == (60, "incident") and {kind for _, kind in found} == {"incident"}


def test_zero_vehicles_on_a_quiet_road_alone_is_no_incident():
    readings = traffic(240)
    for r in readings[100:103]:
        r["intensity"] = 0.0  # speed as usual: chance, at three vehicles per reading
    assert feed("traffic", readings) == []


def test_a_spike_in_the_first_minutes_is_not_learned_as_normal():
    readings = energy(60)
    for r in readings[6:14]:  # x4 from the 7th reading, before the baseline is warm (12 readings)
        r["activePower"] *= 4
    found = feed("energy", readings)
    assert found and found[0][1] == "energy_spike" and 12 <= found[0][0] < 14


def test_a_fire_is_a_fire_risk_from_its_first_jump_not_a_rapid_change():
    readings = waste(120)
    for k, r in enumerate(readings[60:80]):
        r["temperature"] += 60 * min(1.0, (k + 1) / 5)
    assert feed("waste", readings) == [(60, "fire_risk")]


def test_a_loop_stuck_from_its_first_minutes_is_found():
    readings = traffic(80)
    readings[5:60] = [dict(readings[5]) for _ in range(55)]
    assert (5 + 11, "stuck_sensor") in feed("traffic", readings)


def test_an_outage_is_one_outage_alert_without_an_echo_on_voltage():
    readings = energy(240)
    for r in readings[200:230]:
        r.update(activePower=0.0, voltage=0.0)
    assert feed("energy", readings) == [(200, "energy_outage")]


def poisson_traffic(n: int, per_reading: float, seed: int = 4) -> list[dict[str, float]]:
    rng = random.Random(seed)

    def count() -> float:  # vehicles arrive at random: exponential gaps within the 15 s interval
        k, t = 0, rng.expovariate(per_reading)
        while t < 1.0:
            k, t = k + 1, t + rng.expovariate(per_reading)
        return float(k)

    return [{"intensity": count(), "occupancy": 0.1 + rng.gauss(0, 0.01), "averageVehicleSpeed": 47 + rng.gauss(0, 1.5)}
            for _ in range(n)]


def test_a_count_that_low_by_chance_is_no_incident_but_a_busy_road_emptying_is():
    rng = random.Random(5)  # a steady 5.5 vehicles per reading (less spread than chance: the baseline is tight)
    quiet = [{"intensity": float(round(5.5 + rng.gauss(0, 1.0))), "occupancy": 0.1 + rng.gauss(0, 0.01),
              "averageVehicleSpeed": 47 + rng.gauss(0, 1.5)} for _ in range(240)]
    quiet[100]["intensity"] = 1.0  # yet vehicles arrive at random: 1 or fewer comes once in 40 readings
    assert feed("traffic", quiet) == []
    busy = poisson_traffic(240, 40.0)
    for r in busy[100:104]:
        r["intensity"] = 0.0  # at 40 per reading (a main road), none passing is no chance
    assert feed("traffic", busy)[:1] == [(100, "incident")]


def test_the_return_of_supply_after_an_outage_across_the_hour_is_no_spike():
    readings = energy(300)
    for r in readings[225:255]:  # 11:56 to 12:04: the new hour's first readings are the outage's zeros
        r.update(activePower=0.0, voltage=0.0)
    assert feed("energy", readings) == [(225, "energy_outage")]


def test_a_night_road_counting_no_car_then_one_or_two_raises_nothing():
    rng = random.Random(6)
    night = [{"intensity": 0.0 if i < 8 else float(max(0, round(0.3 + rng.gauss(0, 1.0)))),
              "occupancy": 0.02 + abs(rng.gauss(0, 0.01)), "averageVehicleSpeed": 50 + rng.gauss(0, 1.5)}
             for i in range(240)]
    assert max(r["intensity"] for r in night) >= 2  # the first cars after eight empty readings, a few pairs
    assert feed("traffic", night) == []
