"""Damaged changelog records on the real broker: the worker still recovers its tables, becomes ready, and its
silence scan reads past them. Before, one key that did not decode kept the memory store's recovery from ever
ending (/readyz 503 for ever), and with RocksDB made every silence scan raise."""

from __future__ import annotations

import time

import orjson
import pytest

from services.anomaly.engine import Engine
from services.common.kafka import make_producer
from tests.integration.anomaly.worker import Worker, create_changelog_topic

GOOD_STATE = orjson.dumps({**Engine.new_state(), "dom": "energy"})
RECORDS = [
    (orjson.dumps("meter-good"), GOOD_STATE),  # keys JSON-encoded, as Faust writes table keys
    (b"\xff\xfe not a key", GOOD_STATE),
    (b"[1, 2]", GOOD_STATE),
    (orjson.dumps("meter-damaged-value"), b"\x00 not a state"),
]


async def _write_changelog(bootstrap: str, topic: str) -> None:
    await create_changelog_topic(bootstrap, topic)
    producer = make_producer(bootstrap, "anomaly-test-damaged-changelog")
    await producer.start()
    try:
        for key, value in RECORDS:
            await producer.send_and_wait(topic, value, key=key, partition=0)
    finally:
        await producer.stop()


@pytest.mark.parametrize("store", ["rocksdb://", "memory://"])
async def test_the_worker_recovers_past_damaged_changelog_records(kafka, kafka_topics, tmp_path,
                                                                 anomaly_app_id, store):
    await _write_changelog(kafka, f"{anomaly_app_id}-sensor_to_state-changelog")
    worker = Worker(kafka, kafka_topics, anomaly_app_id, tmp_path / "worker.log",
                    CITYSTREAM_ANOMALY_STORE=store)
    try:
        worker.start(timeout_s=90)  # ready: recovery ended
        deadline = time.monotonic() + 30
        # The scan (every second here) meets the two keys that did not decode and the damaged value.
        while worker.metric("citystream_anomaly_undecodable_states_total") < 3:
            assert time.monotonic() < deadline, worker.log_path.read_text()[-3000:]
            time.sleep(0.5)
        time.sleep(3)  # three more scans: each damaged record is counted once, not once per scan
        assert worker.metric("citystream_anomaly_undecodable_states_total") == 3
        assert worker.metric('citystream_anomaly_errors_total{stage="scan"}') == 0
        assert "Error in recovery" not in worker.log_path.read_text()
    finally:
        worker.stop()
