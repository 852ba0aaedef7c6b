"""The Faust worker against the real Kafka: readings in → alerts out, lifecycle, actions, kill -9 recovery."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import pytest

from schemas.topics import ALERT_ACTIONS, ALERTS, REJECTED_READINGS, ROLLUPS_1M, readings_topic
from tests.integration.anomaly.worker import Worker, consume_until, produce, reading, wait_committed

T0 = 1_767_600_000.0  # reading time; detection runs on observed_at, so history replays deterministically


@pytest.fixture
def worker_factory(kafka, kafka_topics, tmp_path, anomaly_app_id):
    app_id = anomaly_app_id
    started: list[Worker] = []

    def make(**env: str) -> Worker:
        worker = Worker(kafka, kafka_topics, app_id, tmp_path / f"worker{len(started)}.log",
                        **{"CITYSTREAM_ANOMALY_RESOLVE_AFTER_S": "600", **env})
        started.append(worker)
        return worker

    make.app_id = app_id
    yield make
    for worker in started:
        worker.stop()


def kinds(events, sensor):
    return [(e["kind"], e["event_type"]) for e in events if e["sensor_id"] == sensor]


async def test_readings_in_alerts_out_with_lifecycle_actions_and_dead_letters(kafka, kafka_topics,
                                                                              worker_factory):
    worker = worker_factory()
    worker.start()
    waste = kafka_topics + readings_topic("waste")
    levels = [0.5, 0.95, 0.96, 0.97, 0.5, 0.5, 0.5, 0.5]  # open once, stay open, recover, auto-resolve (600 s)
    records = [("bin-it-0001", reading("bin-it-0001", i, T0 + i * 300, "waste", fillingLevel=level))
               for i, level in enumerate(levels)]
    # The poison record comes first on its partition (same key as the readings after it): they are still judged.
    records = [("bin-it-0003", b'{"sensor_id": "bin-it-0003", "seq": 1, "metrics": "nope"}'),
               ("bin-it-0003", reading("bin-it-0003", 2, T0, "waste", fillingLevel=0.98)), *records]
    records += [("bin-it-0002", reading("bin-it-0002", 1, T0, "waste", fillingLevel=0.99))]
    await produce(kafka, waste, records)

    alerts = kafka_topics + ALERTS
    events = await consume_until(kafka, alerts, lambda ev: len(kinds(ev, "bin-it-0001")) >= 2
                                 and kinds(ev, "bin-it-0002") and kinds(ev, "bin-it-0003"))
    assert kinds(events, "bin-it-0003") == [("overflow", "opened")], "the reading after the poison was judged"
    assert kinds(events, "bin-it-0001") == [("overflow", "opened"), ("overflow", "resolved")]
    assert len({e["alert_id"] for e in events if e["sensor_id"] == "bin-it-0001"}) == 1
    assert events[-1]["status"] == "resolved" or any(e["status"] == "resolved" for e in events)
    opened = next(e for e in events if e["sensor_id"] == "bin-it-0002")
    assert opened["explanation"]["detector"] == "waste.overflow" and opened["severity"] == "high"

    rejected = await consume_until(kafka, kafka_topics + REJECTED_READINGS, lambda r: len(r) >= 1)
    assert rejected[0]["reason"] == "MALFORMED" and rejected[0]["sensor_id"] == "bin-it-0003"

    action = {"action_id": str(uuid.uuid4()), "alert_id": opened["alert_id"], "sensor_id": "bin-it-0002",
              "action": "acknowledge", "actor": "op-test", "requested_at": datetime.now(UTC).isoformat()}
    await produce(kafka, kafka_topics + ALERT_ACTIONS, [("bin-it-0002", action), ("bin-it-0002", action)])
    events = await consume_until(kafka, alerts, lambda ev: len(kinds(ev, "bin-it-0002")) >= 2)
    acks = [e for e in events if e["sensor_id"] == "bin-it-0002" and e["event_type"] == "acknowledged"]
    assert len(acks) == 1 and acks[0]["status"] == "acknowledged" and acks[0]["actor"] == "op-test"

    rollups = await consume_until(kafka, kafka_topics + ROLLUPS_1M,
                                  lambda r: sum(x["sensor_id"] == "bin-it-0001" for x in r) >= len(levels))
    mine = [r for r in rollups if r["sensor_id"] == "bin-it-0001"]
    assert [r["last"] for r in mine] == levels and all(r["count"] == 1 for r in mine)
    # The judging task settled the collector (services/common/collector.py) once it started, on uvloop (the default
    # when it imports: the entrypoint picks the loop before the app's import creates it).
    log_text = worker.log_path.read_text()
    assert "garbage collector:" in log_text and "objects frozen" in log_text
    assert "judging readings on event loop uvloop" in log_text


async def test_kill_9_after_commit_restores_the_seasonal_baseline_from_the_changelog(kafka, kafka_topics,
                                                                                   worker_factory):
    """Killed only once the group has committed every reading, the restarted worker cannot relearn from Kafka: what
    it knows comes from the changelogs. Hour 0 runs at 100 kW, the six hours after at 20 kW, so the hour-of-week
    bucket of hour 0 (trusted: 12 readings, in sensor_to_baseline) says 100 while the global baseline (hot state)
    says ~30. A week later, 2 kW in hour 0 is an outage only against the restored bucket (1 - 2/100 >= 0.95; against
    ~30 it is not), and a lost hot state would mean warm-up: no expectation at all."""
    energy = kafka_topics + readings_topic("energy")
    sensor = "meter-it-0001"
    hour0 = T0 - T0 % 3600
    first = worker_factory().start()
    history = [(sensor, reading(sensor, i, hour0 + i * 300, "energy",
                                activePower=(100.0 if i < 12 else 20.0) + (i % 5) * 0.3)) for i in range(84)]
    await produce(kafka, energy, history)
    await wait_committed(kafka, worker_factory.app_id, energy, len(history))
    first.kill9()

    second = worker_factory().start()  # same app id: recovers both tables from their changelogs
    week = hour0 + 7 * 86_400
    later = [(sensor, reading(sensor, 84, week, "energy", activePower=100.0)),
             (sensor, reading(sensor, 85, week + 300, "energy", activePower=2.0)),
             (sensor, reading(sensor, 86, week + 600, "energy", activePower=2.0))]
    await produce(kafka, energy, later)
    alerts = kafka_topics + ALERTS
    events = await consume_until(kafka, alerts,
                                 lambda ev: ("energy_outage", "opened") in kinds(ev, sensor), timeout_s=60)
    got = kinds(events, sensor)
    assert ("energy_outage", "opened") in got, f"baseline not restored: {got}"
    assert ("energy_spike", "opened") not in got, "100 kW in hour 0 is normal for the restored hour-of-week bucket"
    outage = next(e for e in events if e["kind"] == "energy_outage")
    assert outage["explanation"]["expected"] > 90, outage["explanation"]
    # The outage opens on seq 85; seq 86 may still be in flight. Wait until all three were judged, then check that
    # none of the 84 committed readings was judged again.
    deadline = time.monotonic() + 15
    while second.metric("citystream_anomaly_readings_total") < len(later) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert second.metric("citystream_anomaly_readings_total") == len(later), "nothing was re-read after the kill"
    opened = [e for e in events if e["event_type"] == "opened"]
    assert len({e["alert_id"] for e in opened}) == len(opened), "no alert id opened twice"
    by_event_id = {}
    for event in events:
        by_event_id.setdefault(event["event_id"], []).append(event)
    assert all(len(copies) == 1 for copies in by_event_id.values()), "no event published twice"


async def test_silence_is_opened_by_the_workers_timer_and_resolves_when_readings_resume(kafka, kafka_topics,
                                                                                       worker_factory):
    """Readings one second apart (sensor clock); then none: the timer (1 s) opens a silence alert while no reading
    comes. The next readings resolve it (resolve-after 0 s here)."""
    worker_factory(CITYSTREAM_ANOMALY_RESOLVE_AFTER_S="0").start()
    waste, alerts = kafka_topics + readings_topic("waste"), kafka_topics + ALERTS
    sensor = "bin-it-quiet"
    start = time.time()
    await produce(kafka, waste, [(sensor, reading(sensor, i, start - 20 + i, "waste", fillingLevel=0.3))
                                           for i in range(20)])
    events = await consume_until(kafka, alerts, lambda ev: ("silence", "opened") in kinds(ev, sensor),
                                 timeout_s=40)
    assert kinds(events, sensor) == [("silence", "opened")], "the timer found it; no reading came to trigger it"
    silence = events[-1]
    assert silence["explanation"]["detector"] == "generic.silence" and silence["explanation"]["expected"] == 1.0
    await produce(kafka, waste, [(sensor, reading(sensor, 20 + i, time.time() + i, "waste",
                                                            fillingLevel=0.3)) for i in range(2)])
    events = await consume_until(kafka, alerts, lambda ev: ("silence", "resolved") in kinds(ev, sensor),
                                 timeout_s=30)
    assert kinds(events, sensor) == [("silence", "opened"), ("silence", "resolved")]
    assert len({e["alert_id"] for e in events if e["sensor_id"] == sensor}) == 1
