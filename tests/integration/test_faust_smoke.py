"""Faust on the real broker: a consumer group, a changelog-backed table, and that table recovered after a restart.

This is what proves faust-streaming + aiokafka work with the Kafka version the local runtime pins.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from aiokafka.admin import NewTopic

from services.common.kafka import make_admin, make_consumer, make_producer
from services.common.settings import KafkaAccess

REPO = Path(__file__).resolve().parents[2]


def start_worker(kafka: KafkaAccess, prefix: str, tmp_path: Path, log_name: str) -> subprocess.Popen:
    env = os.environ | kafka.environment() | {
        "SMOKE_BOOTSTRAP": kafka.bootstrap,
        "SMOKE_APP_ID": f"{prefix}smoke-app",
        "SMOKE_PREFIX": prefix,
        "SMOKE_DATADIR": str(tmp_path / "faust-data"),
    }
    with open(tmp_path / log_name, "wb") as log:
        return subprocess.Popen(
            # --without-web: the CLI turns the web server on whatever the app says; two workers would share 6066.
            [sys.executable, "-m", "faust", "-A", "tests.support.faust_smoke_app", "worker", "--without-web",
             "-l", "info"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )


async def produce(bootstrap: str, topic: str, keys: list[str]) -> None:
    producer = make_producer(bootstrap, "smoke-test")
    await producer.start()
    try:
        for key in keys:
            await producer.send_and_wait(topic, b"x", key=key.encode())
    finally:
        await producer.stop()


async def wait_for_counts(consumer, expected: dict[str, int], timeout_s: float) -> dict[str, int]:
    latest: dict[str, int] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline and any(latest.get(k) != v for k, v in expected.items()):
        batch = await consumer.getmany(timeout_ms=500)
        for records in batch.values():
            for record in records:
                latest[record.key.decode()] = int(record.value)
    return latest


async def wait_for_committed(bootstrap: str, group_id: str, topic: str, expected_total: int, timeout_s: float) -> int:
    """Sum of the group's committed offsets on `topic`, once it reaches `expected_total` (or the timeout)."""
    admin = make_admin(bootstrap)
    await admin.start()
    total = 0
    try:
        for _ in range(int(timeout_s * 2)):
            offsets = await admin.list_consumer_group_offsets(group_id)
            total = sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)
            if total >= expected_total:
                break
            await asyncio.sleep(0.5)
    finally:
        await admin.close()
    return total


async def wait_for_log(path: Path, text: str, timeout_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while text not in (path.read_text(errors="replace") if path.exists() else ""):
        assert loop.time() < deadline, f"{text!r} not in {path.name} after {timeout_s} s"
        await asyncio.sleep(0.2)


def stop(worker: subprocess.Popen, sig: int) -> None:
    os.killpg(worker.pid, sig)
    worker.wait(timeout=30)


async def test_faust_table_recovers_from_changelog_after_worker_is_killed(kafka, topic_prefix, tmp_path):
    admin = make_admin(kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(f"{topic_prefix}smoke.in", 2, 1), NewTopic(f"{topic_prefix}smoke.counts", 1, 1)])
    finally:
        await admin.close()
    consumer = make_consumer(kafka, None, f"{topic_prefix}smoke.counts")
    await consumer.start()
    first = start_worker(kafka, topic_prefix, tmp_path, "worker1.log")
    try:
        await produce(kafka, f"{topic_prefix}smoke.in", ["north", "south"] * 5)
        counts = await wait_for_counts(consumer, {"north": 5, "south": 5}, timeout_s=90)
        assert counts == {"north": 5, "south": 5}, (tmp_path / "worker1.log").read_text()[-3000:]
        # Faust commits source offsets every few seconds; a kill before that would replay the records on top of
        # the recovered table (at-least-once). Wait for the commit so the test isolates changelog recovery.
        committed = await wait_for_committed(
            kafka, f"{topic_prefix}smoke-app", f"{topic_prefix}smoke.in", 10, timeout_s=30
        )
        assert committed == 10
        # kill -9: no clean shutdown; the table must come back from its changelog topic alone.
        stop(first, signal.SIGKILL)
        second = start_worker(kafka, topic_prefix, tmp_path, "worker2.log")
        try:
            # Produce once the new worker has recovered and is ready, as the anomaly worker's tests do: records
            # produced while it was still joining were seen skipped on one partition in two full-suite runs (a
            # Faust start-up race, noted for investigation), which is not what this test is about.
            await wait_for_log(tmp_path / "worker2.log", "[^Worker]: Ready", timeout_s=120)
            await produce(kafka, f"{topic_prefix}smoke.in", ["north", "south"])
            counts = await wait_for_counts(consumer, {"north": 6, "south": 6}, timeout_s=120)
            assert counts == {"north": 6, "south": 6}, (tmp_path / "worker2.log").read_text()[-3000:]
        finally:
            stop(second, signal.SIGTERM)
    finally:
        if first.poll() is None:
            stop(first, signal.SIGKILL)
        await consumer.stop()
