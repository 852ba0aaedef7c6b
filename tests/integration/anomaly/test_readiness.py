"""/readyz says 503 (tables_recovered false) while the worker recovers a large changelog, and 200 afterwards."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import orjson

from services.anomaly.engine import Engine
from services.common.kafka import make_producer
from tests.integration.anomaly.worker import ROOT, Worker, create_changelog_topic

RECORDS = 150_000  # keys JSON-encoded, as Faust writes table keys


async def fill_changelog(bootstrap: str, topic: str) -> None:
    await create_changelog_topic(bootstrap, topic)
    value = orjson.dumps({**Engine.new_state(), "dom": "energy"})
    producer = make_producer(bootstrap, "anomaly-test-changelog", linger_ms=50)
    await producer.start()
    try:
        batch = []
        for i in range(RECORDS):
            batch.append(await producer.send(topic, value, key=orjson.dumps(f"meter-rc-{i:06d}"), partition=i % 4))
            if len(batch) >= 5000:
                for future in batch:
                    await future
                batch = []
        for future in batch:
            await future
    finally:
        await producer.stop()


async def test_readyz_is_503_while_tables_recover_and_200_after(kafka, kafka_topics, tmp_path,
                                                              anomaly_app_id):
    app_id = anomaly_app_id
    await fill_changelog(kafka, f"{app_id}-sensor_to_state-changelog")
    worker = Worker(kafka, kafka_topics, app_id, tmp_path / "worker.log")
    with open(worker.log_path, "ab") as log:
        worker.process = subprocess.Popen([sys.executable, "-m", "services.anomaly", "worker"], cwd=ROOT,
                                          env=worker.env, stdout=log, stderr=subprocess.STDOUT)
    seen = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert worker.process.poll() is None, worker.log_path.read_text()[-3000:]
            try:
                response = httpx.get(f"http://127.0.0.1:{worker.port}/readyz", timeout=2)
            except httpx.HTTPError:
                time.sleep(0.05)
                continue
            seen.append((response.status_code, response.json()["checks"]["tables"]["ok"]))
            if response.status_code == 200:
                break
            time.sleep(0.05)
        assert seen and seen[-1] == (200, True), seen[-5:]
        assert (503, False) in seen, f"never saw the recovery: {sorted(set(seen))}"
        assert all(status == 503 for status, recovered in seen if not recovered)
    finally:
        worker.stop()
