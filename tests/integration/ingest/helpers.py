"""Helpers for ingest integration tests: register records on the real topic, the HTTP app, draining topics."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from schemas.common import Domain
from schemas.register import SensorRegistration
from schemas.topics import REGISTER_SENSORS, readings_topic
from services.common import jsonwire
from services.common.compacted import topic_partitions
from services.common.kafka import make_consumer, make_producer
from services.ingest.http_app import create_app
from services.ingest.runtime import GateRuntime
from services.ingest.settings import IngestSettings

REPO = Path(__file__).resolve().parents[3]


def ingest_settings(settings, **overrides) -> IngestSettings:
    return IngestSettings(kafka_bootstrap=settings.kafka_bootstrap, database_url=settings.database_url,
                          topic_prefix=settings.topic_prefix, instance_id=settings.instance_id, **overrides)


async def publish_register(settings, *records: SensorRegistration, tombstones: tuple[str, ...] = ()) -> None:
    producer = make_producer(settings.kafka, "test-register")
    await producer.start()
    try:
        topic = settings.topic(REGISTER_SENSORS)
        for record in records:
            await producer.send_and_wait(topic, jsonwire.dumps(record), key=record.sensor_id.encode())
        for sensor_id in tombstones:
            await producer.send_and_wait(topic, None, key=sensor_id.encode())
    finally:
        await producer.stop()


@asynccontextmanager
async def http_ingest(settings: IngestSettings):
    """A started gate runtime (caught up with the register) and an httpx client on the real FastAPI app."""
    runtime = GateRuntime.build(settings, "http")
    runtime.start()
    try:
        await runtime.wait_ready(timeout_s=30)
        transport = httpx.ASGITransport(app=create_app(settings, runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest", timeout=30) as client:
            yield client, runtime
    finally:
        await runtime.stop()


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


async def drain(settings, *names: str, timeout_s: float = 30) -> list:
    """Every record on the (prefixed) topics `names`, read from the beginning up to the end offsets of the call.

    Fails unless it really reached those offsets (a topic that is missing, or a read cut short by the deadline,
    would otherwise make `drain(...) == []` pass without having looked)."""
    topics = [settings.topic(name) for name in names]
    consumer = make_consumer(settings.kafka, None)
    await consumer.start()
    try:
        partitions = []
        for topic in topics:
            found = await topic_partitions(settings.kafka, topic)
            assert found, f"topic {topic} does not exist: nothing to drain"
            partitions += found
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            positions = {tp: await consumer.position(tp) for tp in ends}
            if all(positions[tp] >= end for tp, end in ends.items()):
                break
            assert loop.time() < deadline, f"drain stopped at {positions}, short of the end offsets {ends}"
            for batch in (await consumer.getmany(*ends, timeout_ms=200)).values():
                records.extend(record for record in batch if record.offset < ends[_tp(record)])
        return records
    finally:
        await consumer.stop()


def _tp(record):
    from aiokafka import TopicPartition

    return TopicPartition(record.topic, record.partition)


READINGS_TOPICS = tuple(readings_topic(domain) for domain in Domain)


def start_sink(settings, database_url: str, port: int, log_path: Path, **env: str) -> subprocess.Popen:
    """`python -m services.ingest sink` as a process of its own session (killable with its children)."""
    env = os.environ | {
        **settings.kafka.environment(), "CITYSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "CITYSTREAM_DATABASE_URL": database_url, "CITYSTREAM_INGEST_SINK_PORT": str(port),
        "CITYSTREAM_INGEST_SINK_BATCH_MAX": "200", "CITYSTREAM_INGEST_SINK_BACKOFF_MAX_S": "1",
    } | env
    with log_path.open("ab") as log_file:
        return subprocess.Popen([sys.executable, "-m", "services.ingest", "sink"], cwd=REPO, env=env,
                                stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)


def kill(process: subprocess.Popen, sig: int) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
    process.wait(timeout=30)
