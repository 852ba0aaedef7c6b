"""The benchmark's pure parts: books by set comparison, percentiles with missing samples, the headline summary,
the bad share of the load, the probe fleet's size, and CPU/memory of process trees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter

import psutil
import pytest

from citystream.bench.accounting import Accounting, compare
from citystream.bench.fleet import BAD_KINDS, BenchFleet, domain_fleet, key_of
from citystream.bench.load import LoadResult, percentile, tally_answer
from citystream.bench.runner import phase_books, summary
from citystream.bench.usage import ProcessTree, process_table, runtime_processes
from schemas.common import Domain

HEADLINE = ("e2e_readings_per_s", "kafka_path_readings_per_s", "raw_ceiling_readings_per_s", "ingest_ack_p99_ms",
            "alert_latency_p99_ms", "lost", "duplicates")
SENSORS = ["s-0", "s-1", "s-2"]


def test_books_compare_sets_not_counts():
    acked = {key_of(0, 1), key_of(0, 2), key_of(1, 1)}
    # Three rows stored for three acknowledged readings, yet one of them is not one that was acknowledged.
    books = compare(acked, [("s-0", 1, 1), ("s-0", 2, 1), ("s-2", 7, 1)], SENSORS)
    assert (books.acked, books.stored, books.lost, books.duplicates, books.unexpected) == (3, 3, 1, 0, 1)


def test_books_count_duplicates_and_rows_of_sensors_outside_the_fleet():
    acked = {key_of(0, 1), key_of(1, 1)}
    books = compare(acked, [("s-0", 1, 3), ("s-1", 1, 1), ("stranger", 5, 1)], SENSORS)
    assert books.lost == 0 and books.duplicates == 2 and books.unexpected == 1
    assert compare(acked, [("s-0", 1, 1), ("s-1", 1, 1)], SENSORS).lost == 0


def test_percentile_counts_missing_samples_as_larger_than_every_value():
    values = [float(v) for v in range(1, 100)]  # 99 answers
    assert percentile(values, 99) == 99.0
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99, missing=1) is None  # the 100th sample is the slowest, and unknown
    assert percentile(values, 50, missing=1) == 51.0
    assert percentile(values, 50, missing=99) is None  # half the probes missing: even the median is unknown
    assert percentile([], 99) is None and percentile([], 50, missing=3) is None
    assert percentile([5.0, 1.0, 3.0], 0) == 1.0


def _phase(acked: int, *, lost: int = 0, duplicates: int = 0, stored_per_s: int = 1000, failed: int = 0,
           rejected: dict | None = None) -> dict:
    load = LoadResult(started=100.0, ended=110.0, sent=acked + sum((rejected or {}).values()),
                      accepted_keys={key_of(0, n) for n in range(acked)}, rejected=Counter(rejected or {}),
                      latencies_ms=[10.0] * 99, failed_requests=failed)
    books = Accounting(acked, acked - lost, lost, duplicates, 0)
    return phase_books(load, acked - lost, 100.0 + acked / stored_per_s, books, dict(rejected or {}))


def test_summary_has_the_headline_keys_and_sums_the_books_of_every_phase():
    phases = {"http": _phase(1000, stored_per_s=30_000, rejected={"UNKNOWN_SENSOR": 4, "OUT_OF_RANGE": 6}),
              "kafka": _phase(2000, stored_per_s=20_000), "http_half_load": _phase(500),
              "alert_background": _phase(300, duplicates=1), "batch_1": _phase(10, lost=2), "alert_probes": _phase(8)}
    ceilings = {"kafka_produce_consume": 150_000.0, "kafka_send_per_record": 50_000.0, "copy": 100_000.0}
    alert = {"latencies_ms": [100.0, 200.0, 300.0], "missing": 0, "not_admitted": 0, "wait_s": 20.0, "probes": 3}
    result = summary(phases, ceilings, alert)
    json.dumps(result, allow_nan=False)  # the last line must be strict JSON
    for key in HEADLINE:
        assert key in result, key
    assert result["e2e_readings_per_s"] == 30_000 and result["kafka_path_readings_per_s"] == 20_000
    assert result["raw_ceiling_readings_per_s"] == 100_000  # the slower of produce→consume and COPY
    assert result["e2e_fraction_of_ceiling"] == 0.3
    assert result["lost"] == 2, "a phase outside HTTP/Kafka lost readings: the run's books must show it"
    assert result["duplicates"] == 1
    assert result["readings_accounted"] == 1000 + 2000 + 500 + 300 + 10 + 8
    assert result["alert_latency_p99_ms"] == 300.0 and result["alert_latency_p99_beyond"] is None
    assert result["rejections_per_s"]["http_answers"] == {"OUT_OF_RANGE": 0.6, "UNKNOWN_SENSOR": 0.4}


def test_summary_reports_an_alert_p99_among_missing_probes_as_unknown_not_as_the_slowest_seen():
    phases = {"http": _phase(10), "kafka": _phase(10)}
    ceilings = {"kafka_produce_consume": 1.0, "kafka_send_per_record": 1.0, "copy": 1.0}
    alert = {"latencies_ms": [100.0] * 18, "missing": 6, "not_admitted": 0, "wait_s": 20.0, "probes": 24}
    result = summary(phases, ceilings, alert)
    assert result["alert_latency_p99_ms"] is None
    assert result["alert_latency_p99_beyond"].startswith("> 20000 ms")
    assert result["alert_latency_p50_ms"] == 100.0 and result["alert_probes_missing"] == 6


def test_unanswered_requests_push_the_ack_percentile_out_of_the_answers():
    assert _phase(10)["ack_p99_ms"] == 10.0
    assert _phase(10, failed=1)["ack_p99_ms"] is None


def test_a_fixed_share_of_the_load_is_bad_and_each_bad_reading_is_marked():
    fleet = BenchFleet([f"bench-traffic-{i:04d}" for i in range(50)], ["cred"] * 50,
                       [[{"intensity": 3.0, "occupancy": 0.1, "averageVehicleSpeed": 40.0}] * 16] * 50)
    kinds, payloads = [], 0
    for _ in range(30):
        batch = fleet.next_batch(100, 10**11, bad_every=20)
        assert len(batch.payloads) == len(batch.keys) == 100
        payloads += len(batch.payloads)
        for position in batch.bad:
            reading = batch.payloads[position]
            if reading["sensor_id"] not in fleet.sensor_ids:
                kinds.append("UNKNOWN_SENSOR")
            elif "fillingLevel" in reading["metrics"]:
                kinds.append("UNDECLARED_METRIC")
            else:
                assert not 0 <= reading["metrics"]["occupancy"] <= 1
                kinds.append("OUT_OF_RANGE")
        for position in set(range(100)) - batch.bad:
            good = batch.payloads[position]
            assert good["sensor_id"] in fleet.sensor_ids and set(good["metrics"]) == {
                "intensity", "occupancy", "averageVehicleSpeed"} and 0 <= good["metrics"]["occupancy"] <= 1
    assert len(kinds) == payloads // 20
    assert {kind: kinds.count(kind) for kind in BAD_KINDS} == {kind: len(kinds) // 3 for kind in BAD_KINDS}
    assert not fleet.next_batch(100, 10**11).bad  # no bad share unless asked (the raw ceiling uses this)


def test_the_probe_fleet_has_as_many_waste_bins_as_asked():
    specs = domain_fleet(12, 40, "probe-", Domain.WASTE)
    assert len(specs) == 40 and {s.domain for s in specs} == {Domain.WASTE}
    assert len({s.sensor_id for s in specs}) == 40


@pytest.mark.parametrize("shared_table", [False, True], ids=["own scan", "shared process table"])
def test_process_tree_counts_children_also_after_they_exited(tmp_path, shared_table):
    burn = "x = 0\nfor i in range(4 * 10**7): x += i"
    parent = subprocess.Popen([sys.executable, "-c", (f"import subprocess, sys, time\n"
                               f"subprocess.run([sys.executable, '-c', {burn!r}])\ntime.sleep(30)")])
    try:
        own = ProcessTree("parent only", parent.pid, children=False)
        tree = ProcessTree("parent and children", parent.pid)
        own.begin()
        tree.begin()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            table = process_table() if shared_table else None  # the benchmark's sampler shares one per round
            own.sample(table)
            tree.sample(table)
            if tree.processes_seen >= 2 and not psutil.Process(parent.pid).children():
                break  # the child ran and exited
            time.sleep(0.05)
        tree.sample()
        assert tree.processes_seen >= 2
        assert tree.cpu_s >= 0.3 > own.cpu_s, (tree.cpu_s, own.cpu_s)
        assert tree.peak_rss_bytes > 0
    finally:
        parent.kill()
        parent.wait()


def test_runtime_pids_come_from_the_pid_files_of_the_state_dir(tmp_path):
    (tmp_path / "kafka").mkdir()
    (tmp_path / "kafka" / "kafka.pid").write_text(f"{os.getpid()}\n")
    assert runtime_processes(tmp_path) == {"kafka": os.getpid(), "postgresql": None}
    (tmp_path / "postgres" / "data").mkdir(parents=True)
    (tmp_path / "postgres" / "data" / "postmaster.pid").write_text(f"{os.getppid()}\n/data\n1700000000\n15432\n")
    assert runtime_processes(tmp_path)["postgresql"] == os.getppid()


@pytest.mark.parametrize("content", ["", "not a pid\n", "999999999\n"])
def test_a_missing_or_stale_pid_file_is_not_a_process(tmp_path, content):
    (tmp_path / "kafka").mkdir()
    (tmp_path / "kafka" / "kafka.pid").write_text(content)
    assert runtime_processes(tmp_path)["kafka"] is None


@pytest.mark.parametrize("minimal", [True, False])
def test_a_batch_answer_is_tallied_alike_whether_it_lists_every_reading_or_only_the_rejected(minimal):
    keys, bad = [10, 11, 12, 13], frozenset({1, 3})
    listed = [{"index": 0, "status": "accepted"}, {"index": 1, "status": "rejected", "reason": "OUT_OF_RANGE"},
              {"index": 2, "status": "rejected", "reason": "UNKNOWN_SENSOR"},
              {"index": 3, "status": "accepted"}]
    result = LoadResult()
    refused = tally_answer(result, {"outcomes": [o for o in listed if not minimal or o["status"] == "rejected"]},
                           keys, bad)
    assert refused == 2
    assert result.accepted_keys == {10, 13}
    assert result.rejected == {"OUT_OF_RANGE": 1, "UNKNOWN_SENSOR": 1}
    assert result.bad_accepted == 1  # position 3 was meant to be refused and was not


def test_a_batch_refused_whole_counts_every_reading_under_its_reason():
    result = LoadResult()
    assert tally_answer(result, {"reason": "BAD_CREDENTIALS", "accepted": 0, "rejected": 3}, [1, 2, 3],
                        frozenset()) == 3
    assert (result.accepted_keys, result.rejected) == (set(), {"BAD_CREDENTIALS": 3})


def test_the_proc_table_names_each_process_parent_as_psutil_does():
    from citystream.bench.usage import _proc_table

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        table = _proc_table()
        assert child.pid in table[os.getpid()]
        by_psutil = {p.pid: p.info["ppid"] for p in psutil.process_iter(["ppid"])}
        ours = {pid: ppid for ppid, pids in table.items() for pid in pids}
        both = by_psutil.keys() & ours.keys()  # processes may come and go between the two passes
        assert len(both) > 10 and all(ours[pid] == by_psutil[pid] for pid in both)
    finally:
        child.kill()
        child.wait()
