"""`citystream replay` in memory: the worker's engine with its silence ticks over a CSV, deterministic outputs,
the register profile honoured, silence opened by a tick (not by the next reading) and resolved."""

from __future__ import annotations

import csv
from datetime import UTC, datetime

import orjson
from typer.testing import CliRunner

from services.anomaly import cli
from services.anomaly.detectors import Obs, Profile
from services.anomaly.engine import Engine
from services.anomaly.replay import replay
from services.anomaly.scenarios import generate

T0 = 1_767_571_200


def write_series(path, skip: range = range(0), spike_at: int = 300):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value"])
        for i in range(400):
            if i in skip:
                continue
            value = 200.0 if i == spike_at else 50.0 + (i * 7919 % 11) - 5
            writer.writerow([datetime.fromtimestamp(T0 + i * 300, UTC).isoformat(), value])


def run_cli(tmp_path, name: str, *args: str):
    scores, alerts = tmp_path / f"{name}.csv", tmp_path / f"{name}.jsonl"
    result = CliRunner().invoke(cli.app, ["replay", *args, "--scores", str(scores), "--alerts", str(alerts)])
    assert result.exit_code == 0, result.output
    return scores, alerts, result.output


def test_csv_replay_writes_per_reading_scores_and_alerts_deterministically(tmp_path):
    series = tmp_path / "series.csv"
    write_series(series, skip=range(350, 360))
    first = run_cli(tmp_path, "a", str(series))
    second = run_cli(tmp_path, "b", str(series))
    assert first[0].read_bytes() == second[0].read_bytes() and first[1].read_bytes() == second[1].read_bytes()
    with first[0].open() as handle:
        rows = list(csv.DictReader(handle))
    assert {int(r["seq"]) for r in rows} >= set(range(20, 350)), "every judged reading has its scores"
    spike = [r for r in rows if r["seq"] == "300" and r["kind"] == "anomalous_value"]
    assert spike and float(spike[0]["score"]) >= float(spike[0]["threshold"]) and float(spike[0]["observed"]) == 200
    events = [orjson.loads(line) for line in first[1].read_bytes().splitlines()]
    opened = {(e["kind"], e["event_type"]) for e in events}
    assert ("anomalous_value", "opened") in opened
    silence = [e for e in events if e["kind"] == "silence" and e["event_type"] == "opened"]
    assert len(silence) == 1, "the 50-minute gap is found by a timer tick"
    at = datetime.fromisoformat(silence[0]["occurred_at"]).timestamp()
    assert T0 + 349 * 300 + 3 * 300 <= at < T0 + 360 * 300, "opened by a tick inside the gap, not by a reading"
    assert ("silence", "resolved") in {(e["kind"], e["event_type"]) for e in events}
    assert "timer ticks" in first[2]


def test_replay_uses_the_register_profile_ranges_and_interval():
    readings = [Obs("e-1", i, T0 + i * 60.0, {"voltage": 230.0, "activePower": 20.0}) for i in range(30)]
    readings.append(Obs("e-1", 30, T0 + 30 * 60.0 + 500, {"voltage": 612.0, "activePower": 20.0}))
    plain = replay(Engine("energy", with_rollups=False), readings)
    assert not [e for e in plain.events if e.kind.value == "out_of_range"]
    declared = Profile(ranges={"voltage": (0.0, 400.0)}, interval_s=120.0)
    judged = replay(Engine("energy", with_rollups=False), readings, declared)
    kinds = [(e.kind.value, e.event_type.value) for e in judged.events]
    assert ("out_of_range", "opened") in kinds
    # 500 s without a reading: silent after 3 x 120 s declared (the learned 60 s would say so too, at 180 s);
    # with a declared hourly interval it is not silent at all.
    assert ("silence", "opened") in kinds
    hourly = replay(Engine("energy", with_rollups=False), readings, Profile(interval_s=3600.0))
    assert ("silence", "opened") not in [(e.kind.value, e.event_type.value) for e in hourly.events]


def test_replay_runs_the_live_detector_set_and_ticks_through_a_silence():
    scenario = generate("traffic_silence")
    result = replay(Engine("traffic", with_rollups=False), scenario.readings, until=scenario.readings[-1].t + 1)
    start, end = scenario.windows[0]
    silence = [e for e in result.events if e.kind.value == "silence"]
    assert [e.event_type.value for e in silence] == ["opened", "resolved"]
    assert start < silence[0].occurred_at.timestamp() < end
    assert {v[3] for v in result.rows} >= {"traffic.congestion", "traffic.incident", "generic.rapid_change"}


def test_silence_ids_do_not_depend_on_arrival_time():
    ids = []
    for lag in (0.0, 7.3):
        engine = Engine("waste", with_rollups=False)
        state = engine.new_state()
        for i in range(10):
            engine.observe(state, Obs("w-1", i, 1e9 + i * 60, {"fillingLevel": 0.2}), Profile(),
                           arrival=1e9 + i * 60 + lag)
        ids += [e.alert_id for e in engine.tick(state, "w-1", 1e9 + 9 * 60 + 400 + lag, Profile()).events]
    assert len(ids) == 2 and ids[0] == ids[1]
