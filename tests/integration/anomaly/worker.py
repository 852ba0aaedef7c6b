"""Runs `python -m services.anomaly worker` as a subprocess against the real broker, and reads its outputs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from aiokafka.admin import NewTopic

from schemas.headers import make_headers
from services.common import jsonwire
from services.common.kafka import make_admin, make_consumer, make_producer
from services.common.settings import KafkaAccess

ROOT = Path(__file__).resolve().parents[3]


async def create_changelog_topic(bootstrap: str, topic: str) -> None:
    """A worker table's changelog topic as Faust makes it (4 partitions, compacted), for a test to fill first."""
    admin = make_admin(bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1,
                                            topic_configs={"cleanup.policy": "compact"})])
    finally:
        await admin.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Worker:
    def __init__(self, kafka: KafkaAccess, prefix: str, app_id: str, log_path: Path, **env: str) -> None:
        self.port = free_port()
        # Each worker gets its own data directory (RocksDB tables when rocksdict imports), next to its log.
        self.env = {**os.environ, **kafka.environment(), "CITYSTREAM_TOPIC_PREFIX": prefix,
                    "CITYSTREAM_ANOMALY_APP_ID": app_id, "CITYSTREAM_ANOMALY_WEB_PORT": str(self.port),
                    "CITYSTREAM_ANOMALY_DATA_DIR": str(log_path.with_suffix(".data")),
                    "CITYSTREAM_ANOMALY_TICK_INTERVAL_S": "1", **env}
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 60) -> Worker:
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen([sys.executable, "-m", "services.anomaly", "worker"], cwd=ROOT,
                                            env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"worker exited: {self.log_path.read_text()[-3000:]}"
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"worker not ready: {self.log_path.read_text()[-3000:]}")

    def metric(self, name: str) -> float:
        """Sum of a Prometheus counter's samples on this worker's /metrics."""
        text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name) and not line.startswith("#"))

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def reading(sensor_id: str, seq: int, t: float, domain: str, **metrics: float) -> dict:
    at = datetime.fromtimestamp(t, UTC).isoformat()
    return {"sensor_id": sensor_id, "seq": seq, "observed_at": at, "received_at": at, "register_version": 1,
            "domain": domain, "metrics": metrics}


async def produce(bootstrap: str, topic: str, records: list[tuple[str, object]]) -> None:
    producer = make_producer(bootstrap, "anomaly-test")
    await producer.start()
    try:
        for key, value in records:
            body = value if isinstance(value, bytes) else jsonwire.dumps(value)
            await producer.send_and_wait(topic, body, key=key.encode(), headers=make_headers(topic, "test"))
    finally:
        await producer.stop()


async def committed_by_partition(kafka: KafkaAccess, group_id: str, topic: str) -> dict[int, int]:
    """The group's committed offset per partition of `topic` (a record's offset + 1: records done there)."""
    admin = make_admin(kafka, request_timeout_ms=10_000)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group_id)
    finally:
        await admin.close()
    return {tp.partition: max(0, meta.offset) for tp, meta in offsets.items() if tp.topic == topic}


async def committed_offsets(kafka: KafkaAccess, group_id: str, topic: str) -> int:
    """Sum over `topic`'s partitions of the offsets the consumer group has committed (what a restart resumes at)."""
    return sum((await committed_by_partition(kafka, group_id, topic)).values())


async def wait_committed(bootstrap: str, group_id: str, topic: str, count: int, timeout_s: float = 60) -> None:
    import asyncio

    deadline = time.monotonic() + timeout_s
    while (done := await committed_offsets(bootstrap, group_id, topic)) < count:
        assert time.monotonic() < deadline, f"only {done} of {count} offsets of {topic} committed"
        await asyncio.sleep(0.5)


async def consume_until(bootstrap: str, topic: str, done, timeout_s: float = 60) -> list[dict]:
    """All records of `topic` from the beginning until `done(records)` holds (or the timeout)."""
    consumer = make_consumer(bootstrap, None, topic)
    await consumer.start()
    records: list[dict] = []
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not done(records):
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records += [jsonwire.loads(record.value) for record in batch]
    finally:
        await consumer.stop()
    return records
