"""An output the broker refuses for good (here: alerts larger than the topic allows) is never committed past: the
worker stops committing and /readyz turns 503, instead of logging the lost alert and moving on."""

from __future__ import annotations

import asyncio
import time

import httpx
from aiokafka.admin import NewTopic

from schemas.topics import ALERTS, readings_topic
from services.common.kafka import create_topics, make_admin
from tests.integration.anomaly.worker import Worker, committed_offsets, produce, reading

T0 = 1_767_600_000.0


async def test_a_refused_alert_stops_commits_and_turns_the_worker_not_ready(kafka, topic_prefix, tmp_path,
                                                                            anomaly_app_id):
    admin = make_admin(kafka, request_timeout_ms=10_000)
    await admin.start()
    try:  # an alerts topic too small for any alert event; the other topics as the catalogue makes them
        await admin.create_topics([NewTopic(topic_prefix + ALERTS, num_partitions=4, replication_factor=1,
                                            topic_configs={"max.message.bytes": "200"})])
    finally:
        await admin.close()
    await create_topics(kafka, prefix=topic_prefix)
    waste = topic_prefix + readings_topic("waste")
    worker = Worker(kafka, topic_prefix, anomaly_app_id, tmp_path / "worker.log").start()
    try:
        await produce(kafka, waste, [("bin-ro-0001", reading("bin-ro-0001", 1, T0, "waste", fillingLevel=0.99))])
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(timeout=5) as client:
            while (answer := await client.get(f"http://127.0.0.1:{worker.port}/readyz")).status_code == 200:
                assert time.monotonic() < deadline, "still ready after the alert was refused"
                await asyncio.sleep(0.2)
        committing = answer.json()["checks"]["committing"]
        assert answer.status_code == 503 and committing == {"ok": False, "detail": "output_refused"}, answer.text
        await produce(kafka, waste, [("bin-ro-0002", reading("bin-ro-0002", 1, T0, "waste",
                                                                       fillingLevel=0.3))])
        await asyncio.sleep(3)  # three flush intervals
        assert await committed_offsets(kafka, anomaly_app_id, waste) == 0, "nothing committed"
        assert worker.process.poll() is None, "the worker stays up (alive, not ready) for its operator"
    finally:
        worker.stop()
    assert "not committing any more" in worker.log_path.read_text()
