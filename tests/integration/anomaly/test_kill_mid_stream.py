"""kill -9 of the worker in the middle of a stream, then a restart: every reading is judged exactly once into
alerts. The alert events the worker published (by event id) are exactly those of the engine run over each bin's
readings in order, none missing and none extra, and no alert is opened twice."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

from schemas.headers import make_headers
from schemas.topics import ALERTS, readings_topic
from services.anomaly.detectors import DEFAULT_PROFILE, Obs
from services.anomaly.engine import Engine
from services.anomaly.lifecycle import LifecycleConfig
from services.common import jsonwire
from services.common.kafka import make_producer
from services.common.settings import KafkaAccess
from tests.integration.anomaly.worker import Worker, committed_offsets, consume_until, reading, wait_committed

T0 = 1_767_600_000.0
BINS = [f"bin-km-{i:02d}" for i in range(24)]
READINGS_PER_BIN = 120


def level(sensor: int, seq: int) -> float:
    """Overflowing for two readings out of every twelve, then emptied: an alert opens and later auto-resolves."""
    return 0.95 if (seq + 3 * sensor) % 12 in (5, 6) else 0.3 + 0.01 * (seq % 3)


def stream() -> list[tuple[str, dict]]:
    return [(sensor, reading(sensor, seq, T0 + seq * 300, "waste", fillingLevel=level(i, seq)))
            for seq in range(READINGS_PER_BIN) for i, sensor in enumerate(BINS)]


def expected_event_ids(records: list[tuple[str, dict]]) -> set[str]:
    engine = Engine("waste", lifecycle_config=LifecycleConfig(resolve_after_s=600), with_rollups=False)
    states: dict[str, dict] = {}
    ids = set()
    for sensor, value in records:
        state = states.setdefault(sensor, {**engine.new_state(), "dom": "waste"})
        obs = Obs(sensor, value["seq"], T0 + value["seq"] * 300, dict(value["metrics"]))
        ids |= {event.event_id for event in engine.observe(state, obs, DEFAULT_PROFILE).events}
    return ids


async def produce_fast(bootstrap: KafkaAccess, topic: str, records: list[tuple[str, dict]]) -> None:
    producer = make_producer(bootstrap, "anomaly-test-km")
    await producer.start()
    try:
        futures = [await producer.send(topic, jsonwire.dumps(value), key=key.encode(),
                                       headers=make_headers(topic, "test")) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def test_a_kill_9_mid_stream_then_a_restart_judges_every_reading_once_into_alerts(
        kafka, kafka_topics, tmp_path, anomaly_app_id):
    waste, alerts = kafka_topics + readings_topic("waste"), kafka_topics + ALERTS
    records = stream()
    expected = expected_event_ids(records)
    assert len(expected) >= 2 * len(BINS), "every bin opens and resolves alerts"
    env = {"CITYSTREAM_ANOMALY_RESOLVE_AFTER_S": "600", "CITYSTREAM_ANOMALY_SESSION_TIMEOUT_S": "6",
           "CITYSTREAM_ANOMALY_BATCH_MAX": "200"}
    first = Worker(kafka, kafka_topics, anomaly_app_id, tmp_path / "worker0.log", **env).start()
    second = Worker(kafka, kafka_topics, anomaly_app_id, tmp_path / "worker1.log", **env)
    try:
        half = len(records) // 2
        await produce_fast(kafka, waste, records[:half])
        deadline = time.monotonic() + 30
        while first.metric("citystream_anomaly_readings_total") < half // 3:
            assert time.monotonic() < deadline, "the first worker judged nothing"
            await asyncio.sleep(0.02)
        first.kill9()  # mid-stream: judged readings whose states or offsets are not all written yet
        committed_at_kill = await committed_offsets(kafka, anomaly_app_id, waste)
        await asyncio.to_thread(second.start)
        await produce_fast(kafka, waste, records[half:])
        await wait_committed(kafka, anomaly_app_id, waste, len(records), timeout_s=90)
        events = await consume_until(kafka, alerts,
                                     lambda ev: {e["event_id"] for e in ev} >= expected, timeout_s=30)
    finally:
        second.stop()

    assert committed_at_kill < half, "the kill left judged readings uncommitted (else it proves nothing)"
    assert {e["event_id"] for e in events} == expected, "no alert event lost, none extra"
    openings = defaultdict(set)
    for event in events:
        if event["event_type"] == "opened":
            openings[event["alert_id"]].add(event["event_id"])
    assert len(openings) >= len(BINS) and all(len(ids) == 1 for ids in openings.values()), \
        "no alert opened twice"
