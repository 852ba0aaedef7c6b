"""The simulator against the whole pipeline — register, ingest HTTP, sink and the anomaly worker as real processes —
replaying a short backfill faster than real time, then `citystream eval --labels` scores the labels against the
alerts and rejections stored in TimescaleDB."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import uuid

import pytest

from citystream.simulate.badtraffic import EXPECTED_REASON
from services.anomaly.labels import read_labels
from citystream.simulate.runner import RunOptions, Simulation
from services.anomaly.label_scoring import evaluate
from citystream.simulate.settings import SimulateSettings
from schemas.alerts import AlertKind
from tests.support.platform import running_services

# Kinds the detectors find within this short, fast run: a fixed threshold, a drop against the last readings or the
# warm-up baseline, a run of equal readings, or a timer. Scored but not required, because this run cannot show
# them (each is detected when replayed at a 5-minute cadence: tests/unit/simulate/test_anomaly_kinds.py):
# - incident: a fall of the count alone needs ≥ 5 vehicles per reading (Incident.MIN_COUNT), a stalled road a
#   flow of ≥ 60 vehicles/h before it; at this run's 2.5 s (sim) interval a loop counts about one vehicle per
#   reading;
# - missed collection: the bin must stay full for longer than its usual emptying interval (learned, 48 h until
#   known); the run covers minutes of sim time;
# - energy drift: judged only against a full hour-of-week baseline (8 readings per hour of the week);
# - abnormal fill rate: needs 12 learned filling steps of that bin before its episode; in this run's early
#   episodes one bin of two has them (detected 1 of 2 in the runs so far), so it is not required.
FAST_KINDS = {AlertKind.OVERFLOW, AlertKind.FIRE_RISK, AlertKind.ENERGY_OUTAGE, AlertKind.ENERGY_SPIKE,
              AlertKind.SILENCE, AlertKind.STUCK_SENSOR, AlertKind.CONGESTION}


@pytest.fixture
def pipeline(kafka, database_url, kafka_topics, tmp_path):
    with running_services(kafka, database_url, kafka_topics, tmp_path / "logs",
                          roles=("register", "ingest-http", "ingest-sink", "anomaly"),
                          env={"anomaly": {"CITYSTREAM_ANOMALY_TICK_INTERVAL_S": "1"}}) as services:  # silence timer
        yield services


def test_eval_scores_a_simulated_run_against_stored_alerts_and_rejections(pipeline, database_url, tmp_path):
    prefix = f"ev{uuid.uuid4().hex[:6]}-"
    settings = SimulateSettings(register_url=pipeline["register"].url, ingest_url=pipeline["ingest-http"].url,
                                database_url=database_url)
    labels_path = tmp_path / "labels.jsonl"
    # 30 sensors at 60 readings/s, 5× real time: a round every 0.5 s wall (2.5 s sim). The sim clock starts 2 min
    # back and catches up after 30 s; an episode starts every 3 rounds after 10 rounds of normal readings, so all
    # eleven kinds start within the run (by round 43 of ~80), and a silence (40 rounds = 20 s wall) outlasts 3
    # reporting intervals.
    options = RunOptions(seed=11, sensors=30, rate=60, speed=5, backfill_s=120, duration_s=40,
                         labels_path=labels_path, prefix=prefix, expire_after_s=8, suspend_at_round=6,
                         anomaly_first_after=10, anomaly_spacing=3)
    tally = asyncio.run(Simulation(settings, options).run(asyncio.Event()))
    assert tally.accepted > 0 and not tally.rejected, tally.rejected
    assert tally.missing_reasons() == []

    labels = read_labels(labels_path)
    labelled = {label["kind"] for label in labels if label["category"] == "anomaly"}
    assert labelled <= {kind.value for kind in AlertKind}
    assert {kind.value for kind in FAST_KINDS} <= labelled, labelled

    async def settled():
        # The sink stores alerts and rejections a moment after they happen: poll until every fast kind is seen.
        for _ in range(40):
            result = await evaluate(database_url, labels_path, grace_s=60)
            kinds = result.detection.kinds
            if all(kinds.get(k.value) and kinds[k.value].detected for k in FAST_KINDS) \
                    and all(b.refused_as_expected for b in result.bad_traffic):
                return result
            await asyncio.sleep(0.5)
        return result

    result = asyncio.run(settled())
    detection = result.detection
    logs = "\n".join(f"--- {s.name}\n{s.tail(30)}" for s in pipeline.values())
    for kind in FAST_KINDS:
        figures = detection.kinds[kind.value]
        assert figures.labels >= 1 and figures.recall > 0, (kind, result.as_dict(), logs)
    assert detection.alerts > 0 and 0 < detection.precision <= 1
    assert detection.delays_s and all(math.isfinite(d) and d >= 0 for d in detection.delays_s), detection.delays_s
    bad = {b.kind: b for b in result.bad_traffic}
    assert set(bad) == {kind.value for kind in EXPECTED_REASON}
    for b in bad.values():
        assert b.refused_as_expected, (b, result.as_dict())

    # The command prints the same figures as its last line.
    completed = subprocess.run([sys.executable, "-m", "citystream.cli", "eval", "--labels", str(labels_path),
                                "--database-url", database_url, "--grace-s", "60"],
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    printed = json.loads(completed.stdout.strip().splitlines()[-1])
    assert printed["episodes"] == detection.labels and printed["detected"] >= detection.detected
    assert all(printed["kinds"][k.value]["recall"] > 0 for k in FAST_KINDS)
