"""A stored state that does not decode is treated as absent: its sensor starts afresh, nothing else is affected."""

from __future__ import annotations

import pytest

from services.anomaly import state as codec
from services.anomaly.detectors import Profile
from services.anomaly.engine import Engine
from services.anomaly.metrics import UNDECODABLE_STATES
from services.anomaly.scenarios import generate
from services.anomaly.sensors import SensorStates
from services.anomaly.state import UNDECODABLE_KEY_PREFIX

DAMAGED = [b"\xff\xfe not json", b"[1, 2, 3]", b'{"seq": 4}', b"null"]


def _count(part: str) -> float:
    return UNDECODABLE_STATES.labels(part=part)._value.get()


def _judged(engine: Engine, states: SensorStates, sensor: str, readings) -> dict:
    for obs in readings:
        state = states.get(sensor, 0, engine.domain)
        engine.observe(state, obs, Profile())
        states.save(sensor, state, obs.t)
    return states.get(sensor, 0)


@pytest.fixture
def energy():
    scenario = generate("energy_spike")
    return Engine("energy", with_rollups=False), scenario.readings[0].sensor_id, scenario.readings


@pytest.mark.parametrize("damaged", DAMAGED)
def test_a_damaged_hot_state_starts_the_sensor_afresh_and_is_overwritten(energy, damaged):
    engine, sensor, readings = energy
    hot = {sensor: damaged}
    states = SensorStates(hot, {}, lambda domain: engine.new_state())
    before = _count("hot")
    state = states.get(sensor, 0, "energy")
    assert (state["seq"], state["dom"]) == (-1, "energy")
    assert _count("hot") == before + 1
    engine.observe(state, readings[0], Profile())
    states.save(sensor, state, readings[0].t)
    assert codec.decode_hot(hot[sensor])["seq"] == readings[0].seq  # the damaged record is gone


@pytest.mark.parametrize("damaged", DAMAGED)
def test_the_timer_scan_skips_a_damaged_state_and_reports_it_once(energy, damaged):
    engine, sensor, _ = energy
    states = SensorStates({sensor: damaged}, {}, lambda domain: engine.new_state())
    before = _count("hot")
    assert not any(states.peek(sensor, damaged) for _scan in range(3))
    assert _count("hot") == before + 1  # one damaged record, one count (and one log line), however many scans


def test_the_timer_scan_skips_a_key_that_did_not_decode(energy):
    engine, sensor, readings = energy
    hot = {}
    learnt = _judged(engine, SensorStates(hot, {}, lambda domain: engine.new_state()), sensor, readings[:20])
    marker = UNDECODABLE_KEY_PREFIX + "fffe"  # what services/anomaly/table_keys.py makes of such a key
    states = SensorStates({marker: hot[sensor]}, {}, lambda domain: engine.new_state())
    assert learnt and not states.peek(marker, hot[sensor])


def test_a_damaged_seasonal_part_keeps_the_hot_state(energy):
    engine, sensor, readings = energy
    hot, seasonal = {}, {}
    learnt = _judged(engine, SensorStates(hot, seasonal, lambda domain: engine.new_state()), sensor, readings[:200])
    seasonal[sensor] = seasonal[sensor][:5]  # cut short
    before = _count("seasonal")
    recovered = SensorStates(hot, seasonal, lambda domain: engine.new_state()).get(sensor, 0)
    assert recovered["seq"] == learnt["seq"] and recovered["m"] == learnt["m"]
    assert recovered["b"] == {}
    assert _count("seasonal") == before + 1


def test_after_a_rebalance_the_cached_state_beats_a_damaged_table_record(energy):
    engine, sensor, readings = energy
    hot = {}
    states = SensorStates(hot, {}, lambda domain: engine.new_state())
    learnt = _judged(engine, states, sensor, readings[:50])
    hot[sensor] = b"\x00 damaged"
    states.rebalanced([0])
    assert states.get(sensor, 0) is learnt
