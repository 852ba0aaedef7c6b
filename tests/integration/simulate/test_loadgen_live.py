"""`citystream loadgen` against a platform it did not start (register + ingest HTTP as real processes): both paths
are driven, acknowledged readings land on the readings and raw topics, and the last line is the JSON summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.topics import RAW_READINGS
from services.common.kafka import access_of
from tests.support.platform import running_services


@pytest.fixture
def running_platform(kafka, database_url, kafka_topics, tmp_path):
    with running_services(kafka, database_url, kafka_topics, tmp_path / "logs",
                          roles=("register", "ingest-http")) as services:
        yield services


async def _records_on(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(**access_of(bootstrap).client_options(), enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in (await consumer._client.fetch_all_metadata())
                      .partitions_for_topic(topic)]
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        return sum(ends[tp] - starts[tp] for tp in partitions)
    finally:
        await consumer.stop()


async def test_loadgen_drives_http_and_kafka_paths_of_a_running_platform(running_platform, kafka,
                                                                         kafka_topics):
    prefix = f"lg{uuid.uuid4().hex[:6]}-"
    env = os.environ | {"CITYSTREAM_REGISTER_URL": running_platform["register"].url,
                        "CITYSTREAM_INGEST_URL": running_platform["ingest-http"].url,
                        "CITYSTREAM_KAFKA_BOOTSTRAP": kafka.bootstrap, "CITYSTREAM_TOPIC_PREFIX": kafka_topics}
    completed = subprocess.run([sys.executable, "-m", "citystream.cli", "loadgen", "--duration", "3", "--path", "both",
                                "--sensors", "20", "--batch", "100", "--connections", "2", "--prefix", prefix],
                               capture_output=True, text=True, env=env, timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert "loadgen (both)" in completed.stderr and "acknowledged readings/s" in completed.stderr
    assert result["path"] == "both" and result["sensors"] == 20
    assert result["http_acked"] > 0 and result["kafka_acked"] > 0
    assert result["http_acked"] <= result["http_sent"] and result["kafka_acked"] <= result["kafka_sent"]
    assert result["http_rejected"] == {} and result["http_errors"] == {} and result["kafka_errors"] == {}
    assert 0 < result["http_ack_p50_ms"] <= result["http_ack_p99_ms"]
    assert result["acked_readings_per_s"] == result["http_acked_readings_per_s"] + result["kafka_acked_readings_per_s"]
    # Every record the broker acknowledged on the raw path is on the raw topic (nothing else writes it here).
    assert await _records_on(kafka, f"{kafka_topics}{RAW_READINGS}") == result["kafka_acked"]
