"""The real broker and database answer: produce/consume through Kafka; write and bucket a hypertable."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from schemas import headers
from schemas.topics import CATALOGUE, readings_topic
from services.common import jsonwire
from services.common.errors import ConfigurationError
from services.common.kafka import create_topics, make_admin, make_consumer, make_producer


async def test_produce_and_consume_through_the_real_broker(kafka, kafka_topics):
    topic = kafka_topics + readings_topic("traffic")
    producer = make_producer(kafka, "test-producer")
    await producer.start()
    try:
        sent = {f"sensor-{n:03d}": {"seq": n} for n in range(20)}
        for key, value in sent.items():
            await producer.send_and_wait(
                topic, jsonwire.dumps(value), key=key.encode(), headers=headers.make_headers(topic, "test")
            )
    finally:
        await producer.stop()
    consumer = make_consumer(kafka, None, topic)
    await consumer.start()
    try:
        received = {}
        batches = 0
        while len(received) < len(sent) and batches < 50:
            batch = await consumer.getmany(timeout_ms=500)
            batches += 1
            for records in batch.values():
                for record in records:
                    received[record.key.decode()] = jsonwire.loads(record.value)
                    assert headers.header_value(record.headers, headers.SCHEMA) == topic
    finally:
        await consumer.stop()
    assert received == sent


async def test_hypertable_write_and_time_bucket(database_url):
    connection = await asyncpg.connect(database_url)
    try:
        start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
        rows = [
            (start + timedelta(seconds=30 * n), "test-bucket-001", n, "traffic", start, 1, f'{{"intensity": {n}}}')
            for n in range(10)
        ]
        await connection.executemany(
            "INSERT INTO readings (observed_at, sensor_id, seq, domain, received_at, register_version, metrics)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
            rows,
        )
        buckets = await connection.fetch(
            "SELECT time_bucket('1 minute', observed_at) AS bucket, count(*) AS n,"
            " avg((metrics->>'intensity')::float8) AS mean"
            " FROM readings WHERE sensor_id = 'test-bucket-001' GROUP BY bucket ORDER BY bucket"
        )
        hypertables = await connection.fetch("SELECT hypertable_name FROM timescaledb_information.hypertables")
    finally:
        await connection.close()
    assert [row["n"] for row in buckets] == [2] * 5
    assert [row["mean"] for row in buckets] == [0.5, 2.5, 4.5, 6.5, 8.5]
    assert {"readings", "rejections", "alert_events", "rollups_1m"} <= {row["hypertable_name"] for row in hypertables}


async def test_topics_are_created_as_the_catalogue_says_and_refusals_are_reported(kafka, topic_prefix):
    created = await create_topics(kafka, prefix=topic_prefix)
    assert sorted(created) == sorted(topic_prefix + spec.name for spec in CATALOGUE)
    assert await create_topics(kafka, prefix=topic_prefix) == []  # idempotent
    admin = make_admin(kafka)
    await admin.start()
    try:
        described = {t["topic"]: t for t in await admin.describe_topics([topic_prefix + s.name for s in CATALOGUE])}
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic_prefix + s.name) for s in CATALOGUE]
        )
    finally:
        await admin.close()
    actual = {}
    for response in configs:
        for resource in response.to_object()["resources"]:
            actual[resource["resource_name"]] = {c["config_names"]: c["config_value"] for c in resource["config_entries"]}
    for spec in CATALOGUE:
        name = topic_prefix + spec.name
        assert len(described[name]["partitions"]) == spec.partitions, name
        for key, value in spec.config().items():
            assert actual[name][key] == value, (name, key)

    broken = dataclasses.replace(CATALOGUE[0], name="broken.v1", cleanup_policy="sometimes")
    with pytest.raises(ConfigurationError, match=r"broken\.v1.*cleanup\.policy"):
        await create_topics(kafka, [broken], prefix=topic_prefix)


async def test_a_misspelt_topic_is_refused_not_created(kafka, topic_prefix):
    """The broker runs without auto-creation: only the catalogue's topics (and Faust's own) exist."""
    from aiokafka.errors import KafkaError

    misspelt = f"{topic_prefix}citystream.readings.trafic.v1"
    producer = make_producer(kafka, "test-misspelt", request_timeout_ms=3000)
    await producer.start()
    try:
        with pytest.raises(KafkaError):
            await producer.send_and_wait(misspelt, b"{}", key=b"sensor-1")
    finally:
        await producer.stop()
    admin = make_admin(kafka)
    await admin.start()
    try:
        assert misspelt not in await admin.list_topics()
    finally:
        await admin.close()
