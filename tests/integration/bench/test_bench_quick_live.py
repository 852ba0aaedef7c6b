"""`citystream bench --quick` end to end against the real broker and database: every phase runs with tiny load and
short phases, the last line is the JSON summary (also saved under the results dir), and nothing acknowledged was
lost. A smoke run of the runner, never a timing assertion."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import asyncpg

from citystream.bench.usage import runtime_processes
from citystream.devenv.config import DevSettings
from services.common.kafka import make_admin
from services.common.settings import KafkaAccess

HEADLINE = ("e2e_readings_per_s", "kafka_path_readings_per_s", "raw_ceiling_readings_per_s", "ingest_ack_p99_ms",
            "alert_latency_p99_ms", "alert_latency_p50_ms", "lost", "duplicates", "e2e_detected_readings_per_s",
            "e2e_detected_lag_end_s", "e2e_detected_target_met", "alert_latency_target_met", "cpu_us_per_reading")
PHASES = {"admission_probe", "http", "kafka", "http_half_load", "detected", "alert_background", "alert_probes",
          "detected_scale_out", "batch_1", "batch_100"}


async def _leftovers(admin_url: str, bootstrap: KafkaAccess, run_id: str) -> tuple[list[str], list[str]]:
    connection = await asyncpg.connect(admin_url)
    try:
        databases = [r["datname"] for r in await connection.fetch("SELECT datname FROM pg_database")]
    finally:
        await connection.close()
    admin = make_admin(bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith(f"bench.{run_id}.")]
    finally:
        await admin.close()
    return databases, topics


def test_quick_bench_prints_and_saves_the_summary_with_nothing_lost(infrastructure, tmp_path):
    results_dir = tmp_path / "results"
    env = os.environ | infrastructure.kafka.environment() | {
        "CITYSTREAM_DATABASE_URL": infrastructure.admin_database_url,
        "CITYSTREAM_KAFKA_ANONYMOUS_BOOTSTRAP": infrastructure.anonymous_bootstrap or ""}
    before = set(asyncio.run(_leftovers(infrastructure.admin_database_url, infrastructure.kafka, "-"))[0])
    completed = subprocess.run([sys.executable, "-m", "citystream.cli", "bench", "--quick", "--results-dir",
                                str(results_dir), "--logs-dir", str(tmp_path / "logs")],
                               check=False, capture_output=True, text=True, timeout=300, env=env)
    assert completed.returncode == 0, completed.stderr[-4000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])

    for key in HEADLINE:
        assert key in result, key
    assert result["lost"] == 0 and result["duplicates"] == 0, result["phases"]
    assert PHASES <= set(result["phases_accounted"]), result["phases_accounted"]
    assert result["readings_accounted"] > 0 and result["e2e_readings_per_s"] > 0
    assert result["kafka_path_readings_per_s"] > 0 and result["raw_ceiling_readings_per_s"] > 0
    assert result["elapsed_s"] > 0
    # The bad share was sent on both paths and refused, each with its reason, in the answers and the table.
    assert result["bad_readings_sent"] > 0 and result["bad_readings_accepted"] == 0
    reasons = {"UNKNOWN_SENSOR", "UNDECLARED_METRIC", "OUT_OF_RANGE"}
    for source in ("http_answers", "http_stored", "kafka_stored"):
        assert set(result["rejections_per_s"][source]) == reasons, result["rejections_per_s"]
    # Usage of every service, of the generator itself, and of the local runtime's broker and database when their
    # pid files are there (a containerised runtime has none: then they are listed as not found).
    assert {"register", "ingest-http", "ingest-gate", "ingest-sink", "anomaly", "load generator"} \
        <= set(result["components"])
    for name, pid in runtime_processes(DevSettings().state_dir).items():
        assert (name in result["components"]) if pid else (name in result["components_not_found"]), name
    # Stored and judged: the detected phase ran with one worker, the scale-out phase with two, every reading of
    # both judged in the end; CPU per reading names each service that ran.
    assert result["e2e_detected_readings_per_s"] > 0 and result["e2e_detected_lag_end_s"] is not None
    rows = result["anomaly_workers_scale_out"]
    assert [row["anomaly_workers"] for row in rows] == [1, 2] and all(row["e2e_detected_readings_per_s"] > 0
                                                                     for row in rows)
    assert all(result["phases"][name]["unjudged_after_wait"] == 0 for name in ("detected", "detected_scale_out"))
    assert {"anomaly", "ingest-http", "ingest-sink", "load generator", "total"} <= set(result["cpu_us_per_reading"])
    assert result["cpu_us_per_reading"]["anomaly"] > 0 and "anomaly" not in \
        result["cpu_us_per_reading_without_detection"]
    assert result["alert_probes"] == 4
    assert 0 <= result["alert_probes_missing"] <= result["alert_probes"]

    saved = list(results_dir.glob("*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text()) == result

    databases, topics = asyncio.run(_leftovers(infrastructure.admin_database_url, infrastructure.kafka,
                                               result["run_id"]))
    assert not [d for d in set(databases) - before if d.startswith("cs_bench_")], "the run's database stays"
    assert topics == [], "the run's topics stay"
