"""The detected phase's pure parts: stored-and-judged rate and end-of-load lag, the 1-vs-N worker rows, the headline
keys and targets in the summary, CPU µs per reading per component, the judged counter, the lag gate, and the
per-role naming of several processes."""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from pathlib import Path

from citystream.bench.accounting import Accounting
from citystream.bench.fleet import key_of
from citystream.bench.judged import LagGate, Progress, detected_books, judged_total, scale_out_rows
from citystream.bench.load import LoadResult
from citystream.bench.processes import anomaly_group, instance_name, platform_services
from citystream.bench.runner import phase_books, summary
from citystream.bench.usage import ProcessTree, cpu_by_component, us_per_reading

CEILINGS = {"kafka_produce_consume": 150_000.0, "kafka_send_per_record": 50_000.0, "copy": 100_000.0}
ALERT = {"latencies_ms": [100.0, 200.0, 300.0], "missing": 0, "not_admitted": 0, "wait_s": 20.0, "probes": 3}


def _books(acked: int, *, seconds: float = 60.0, drained_s: float = 61.0) -> tuple[LoadResult, dict]:
    load = LoadResult(started=1000.0, ended=1000.0 + seconds, sent=acked,
                      accepted_keys={key_of(0, n) for n in range(acked)}, rejected=Counter(), latencies_ms=[5.0] * 10)
    return load, phase_books(load, acked, 1000.0 + drained_s, Accounting(acked, acked, 0, 0, 0), {})


def test_detected_rate_counts_a_reading_once_stored_and_judged_and_the_lag_is_in_seconds_of_input():
    load, books = _books(600_000)  # 10k/s acknowledged for 60 s, all stored 61 s after the start
    at_end = Progress(produced=600_000, judged=580_000.0, at=1060.0)  # 20k not judged yet = 2 s of input
    done = Progress(produced=600_000, judged=600_000.0, at=1064.0)  # judged 64 s after the start
    figures = detected_books(load, books, at_end, done, anomaly_workers=2, held_s=3.0)
    json.dumps(figures, allow_nan=False)
    assert figures["e2e_detected_readings_per_s"] == round(600_000 / 64)  # the later of stored and judged counts
    assert figures["lag_end_readings"] == 20_000 and figures["lag_end_s"] == 2.0
    assert figures["lag_end_within_target"] is True and figures["unjudged_after_wait"] == 0
    assert figures["judged_during_load_per_s"] == round(580_000 / 60) and figures["anomaly_workers"] == 2
    behind = detected_books(load, books, Progress(600_000, 300_000.0, 1060.0), Progress(600_000, 450_000.0, 1180.0),
                            anomaly_workers=1, held_s=0.0)
    # Not drained within the wait: only what was judged counts, over the whole time waited.
    assert behind["lag_end_s"] == 30.0 and behind["lag_end_within_target"] is False
    assert behind["unjudged_after_wait"] == 150_000 and behind["e2e_detected_readings_per_s"] == round(450_000 / 180)
    slow_sink = detected_books(load, _books(600_000, drained_s=100.0)[1], at_end, done, anomaly_workers=1, held_s=0)
    assert slow_sink["e2e_detected_readings_per_s"] == 6000  # stored last: the sink's 100 s set the rate


def _detected(workers: int, rate: int, lag_s: float, cpu: dict) -> dict:
    load, books = _books(rate * 60, drained_s=60.0)
    books["cpu_us_per_reading"] = cpu
    produced = rate * 60
    books.update(detected_books(load, books, Progress(produced, produced - lag_s * rate, 1060.0),
                                Progress(produced, float(produced), 1060.0), anomaly_workers=workers, held_s=0.0))
    return books


def test_summary_carries_the_detected_figures_targets_and_the_worker_rows_side_by_side():
    _, http = _books(1_200_000, drained_s=40.0)
    http["cpu_us_per_reading"] = {"ingest-http": 20.0, "total": 50.0}
    phases = {"http": http, "kafka": _books(10)[1],
              "detected": _detected(1, 31_000, 0.5, {"anomaly": 25.0, "ingest-http": 21.0, "total": 70.0}),
              "detected_scale_out": _detected(2, 35_000, 3.0, {"anomaly": 27.0, "total": 75.0})}
    result = summary(phases, CEILINGS, ALERT)
    json.dumps(result, allow_nan=False)
    assert result["e2e_detected_readings_per_s"] == 31_000 and result["e2e_detected_lag_end_s"] == 0.5
    assert result["e2e_detected_target_met"] is True and result["alert_latency_target_met"] is True
    assert result["cpu_us_per_reading"]["anomaly"] == 25.0
    assert result["cpu_us_per_reading_without_detection"] == {"ingest-http": 20.0, "total": 50.0}
    rows = result["anomaly_workers_scale_out"]
    assert [(r["anomaly_workers"], r["e2e_detected_readings_per_s"], r["lag_end_s"]) for r in rows] == \
        [(1, 31_000, 0.5), (2, 35_000, 3.0)]
    assert rows[1]["anomaly_cpu_us_per_reading"] == 27.0

    phases["detected"] = _detected(1, 31_000, 2.5, {})  # fast enough, but detection fell more than 2 s behind
    slow_alerts = {**ALERT, "latencies_ms": [100.0, 200.0, 900.0]}
    result = summary(phases, CEILINGS, slow_alerts)
    assert result["e2e_detected_target_met"] is False and result["alert_latency_target_met"] is False
    missing = summary(phases, CEILINGS, {**ALERT, "latencies_ms": [100.0], "missing": 2})
    assert missing["alert_latency_target_met"] is False  # a p99 among missing probes is not a met target


def test_summary_without_a_detected_phase_reports_none_and_no_rows():
    result = summary({"http": _books(10)[1], "kafka": _books(10)[1]}, CEILINGS, ALERT)
    assert result["e2e_detected_readings_per_s"] is None and result["e2e_detected_target_met"] is False
    assert result["anomaly_workers_scale_out"] == [] and scale_out_rows({}) == []


def test_cpu_per_reading_per_component_from_two_samples():
    before = {"ingest-http": 10.0, "anomaly": 0.0, "kafka": 5.0}
    after = {"ingest-http": 12.0, "anomaly": 3.0, "kafka": 5.5, "postgresql": 1.0}
    figures = us_per_reading(before, after, 100_000)
    assert figures == {"anomaly": 30.0, "ingest-http": 20.0, "kafka": 5.0, "postgresql": 10.0, "total": 65.0}
    assert us_per_reading(before, after, 0) == {}


def test_cpu_by_component_sums_the_processes_of_a_role():
    me = ProcessTree("x", os.getpid(), children=False)
    me.begin()
    sum(i * i for i in range(2_000_000))  # some CPU (~0.1 s), so the figure is not 0
    one = cpu_by_component([("anomaly", me)])["anomaly"]
    both = cpu_by_component([("anomaly", me), ("anomaly", me)])["anomaly"]
    assert one > 0 and abs(both - 2 * one) < 0.05


def test_judged_total_sums_every_domain_and_ignores_created_timestamps():
    text = """# HELP citystream_anomaly_readings_total Readings judged by the detectors.
# TYPE citystream_anomaly_readings_total counter
citystream_anomaly_readings_total{domain="traffic"} 1200.0
citystream_anomaly_readings_total{domain="waste"} 34.0
citystream_anomaly_readings_created{domain="traffic"} 1.7e9
citystream_anomaly_readings_total_created{domain="waste"} 1.7e9
citystream_anomaly_consumer_lag_records{topic="t",partition="0"} 7.0
"""
    assert judged_total(text) == 1234.0
    assert judged_total("") == 0.0


class _FakeProgress:
    """Judging at a fixed rate, driven by the test."""

    def __init__(self) -> None:
        self.judged = 0.0
        self.at = 0.0

    async def sample(self) -> Progress:
        return Progress(produced=0, judged=self.judged, at=self.at)


async def test_the_lag_gate_holds_batches_beyond_the_budget_and_lets_them_go_as_readings_are_judged():
    progress = _FakeProgress()
    gate = LagGate(progress, max_lag_s=1.0, min_budget=2000, initial_budget=3000, interval_s=0.02)
    await gate.room(1000)
    await gate.room(1000)
    await gate.room(1000)  # 3000 in flight: the initial budget is full
    held = asyncio.create_task(gate.room(1000))
    sampler = asyncio.create_task(gate.run())
    try:
        await asyncio.sleep(0.1)
        assert not held.done(), "a fourth batch would exceed the budget"
        for step in range(1, 6):  # judging 1000 readings per 0.5 s of sample time = 2000/s
            progress.judged, progress.at = 1000.0 * step, 0.5 * step
            await asyncio.sleep(0.05)
        await asyncio.wait_for(held, 1.0)
        assert gate.sent == 4000 and gate.rate_per_s == 2000.0 and gate.budget == 2000
        assert gate.held_s > 0
    finally:
        sampler.cancel()


async def test_readings_the_ingest_refused_are_not_waiting_to_be_judged():
    """The load's bad readings never reach a worker: counted as waiting, they would fill the budget for good."""
    progress = _FakeProgress()
    gate = LagGate(progress, max_lag_s=1.0, min_budget=2000, initial_budget=2000, interval_s=0.02)
    for _ in range(2):
        await gate.room(1000)
        gate.not_admitted(10)  # 1 % of each batch refused by the ingest
    progress.judged, progress.at = 1980.0, 1.0  # every admitted reading judged
    sampler = asyncio.create_task(gate.run())
    try:
        await asyncio.sleep(0.05)
        await asyncio.wait_for(gate.room(2000), 0.5)  # nothing waits: the whole budget is free again
        assert gate.sent == 3980
    finally:
        sampler.cancel()


def test_several_processes_of_a_role_are_named_and_summed_by_role(tmp_path: Path):
    assert [instance_name("ingest-http", i) for i in range(3)] == ["ingest-http", "ingest-http#2", "ingest-http#3"]
    services = platform_services(bootstrap="b:1", database_url="postgresql://x/y", topic_prefix="p.", run_id="r",
                                 logs_dir=tmp_path, roles=("ingest-http", "ingest-sink"),
                                 instances={"ingest-http": 2, "ingest-sink": 2})
    assert sorted(services) == ["ingest-http", "ingest-http#2", "ingest-sink", "ingest-sink#2"]
    assert {s.role for s in services.values()} == {"ingest-http", "ingest-sink"}
    assert len({s.port for s in services.values()}) == 4
    sinks = [s.env["CITYSTREAM_INGEST_SINK_GROUP_ID"] for s in services.values() if s.role == "ingest-sink"]
    assert sinks[0] == sinks[1], "sink processes share one consumer group"
    group = anomaly_group(2, bootstrap="b:1", database_url="postgresql://x/y", topic_prefix="p.", run_id="r",
                          logs_dir=tmp_path, app_id="bench-anomaly-r-x2")
    assert [w.role for w in group.values()] == ["anomaly", "anomaly"]
    assert {w.env["CITYSTREAM_ANOMALY_APP_ID"] for w in group.values()} == {"bench-anomaly-r-x2"}
    assert len({w.env["CITYSTREAM_ANOMALY_DATA_DIR"] for w in group.values()}) == 2
    assert len({w.env["CITYSTREAM_ANOMALY_WEB_PORT"] for w in group.values()}) == 2
    assert all(w.args == ("services.anomaly", "worker") for w in group.values())
