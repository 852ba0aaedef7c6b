"""The Kafka-native path: the Faust gate worker admits raw records with the same gate and survives bad ones."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from schemas.topics import RAW_READINGS, REJECTED_READINGS
from services.common import jsonwire
from services.common.kafka import make_producer
from services.common.readiness import Readiness
from tests.integration.ingest.helpers import READINGS_TOPICS, drain, publish_register
from tests.support.ingest_factories import new_credential, reading, registration

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_raw_records_pass_the_same_gate_and_bad_ones_are_rejected(settings, tmp_path):
    uid = uuid.uuid4().hex[:8]
    key, stored = new_credential()
    sensor = f"traffic-{uid}-raw"
    await publish_register(settings, registration(sensor, stored))
    gate_port = free_port()
    env = os.environ | {
        "CITYSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "CITYSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "CITYSTREAM_INGEST_GATE_APP_ID": f"{settings.topic_prefix}gate", "CITYSTREAM_INGEST_GATE_PORT": str(gate_port),
        "CITYSTREAM_INGEST_GATE_DATA_DIR": str(tmp_path / "gate-data"),
    }
    log_path = tmp_path / "gate.log"
    with log_path.open("wb") as log_file:
        worker = subprocess.Popen([sys.executable, "-m", "services.ingest", "gate"], cwd=REPO, env=env,
                                  stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        producer = make_producer(settings.kafka, "test-raw")
        await producer.start()
        raw_topic = settings.topic(RAW_READINGS)
        credential = [("credential", key.encode())]
        sends = [
            (sensor, jsonwire.dumps(reading(1)), credential),  # admitted
            (sensor, b"{not json", credential),  # MALFORMED, and the agent carries on
            (sensor, jsonwire.dumps(reading(2, averageVehicleSpeed=999.0)), credential),  # OUT_OF_RANGE
            (sensor, jsonwire.dumps(reading(3)), [("credential", b"kzz.wrong")]),  # BAD_CREDENTIALS
            (f"traffic-{uid}-ghost", jsonwire.dumps(reading(4)), credential),  # UNKNOWN_SENSOR
            (sensor, jsonwire.dumps(reading(5) | {"domain": "energy"}), credential),  # MALFORMED (extra field)
            (sensor, jsonwire.dumps(reading(6)), credential),  # admitted
        ]
        try:
            for record_key, value, headers in sends:
                await producer.send_and_wait(raw_topic, value, key=record_key.encode(), headers=headers)
        finally:
            await producer.stop()
        admitted, rejected = [], []
        for _ in range(90):
            admitted = [jsonwire.loads(r.value) for r in await drain(settings, *READINGS_TOPICS)]
            rejected = [jsonwire.loads(r.value) for r in await drain(settings, REJECTED_READINGS)]
            if len(admitted) + len(rejected) >= len(sends) or worker.poll() is not None:
                break
            await asyncio.sleep(1)
        assert sorted(r["seq"] for r in admitted) == [1, 6], log_path.read_text()[-3000:]
        assert {r["register_version"] for r in admitted} == {1} and {r["sensor_id"] for r in admitted} == {sensor}
        assert sorted(r["reason"] for r in rejected) == sorted(
            ["MALFORMED", "OUT_OF_RANGE", "BAD_CREDENTIALS", "UNKNOWN_SENSOR", "MALFORMED"])
        assert {r["source"] for r in rejected} == {"kafka"}
        ready = httpx.get(f"http://127.0.0.1:{gate_port}/readyz", timeout=5)  # the one readiness contract
        assert ready.status_code == 200 and Readiness.model_validate(ready.json()).status == "ready"
        assert ready.json()["checks"]["kafka"] == {"ok": True, "detail": "answering"}
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
