"""The raw ceiling, measured in the same run: plain aiokafka produce→consume of the same payloads, and plain
asyncpg COPY of the same rows into a table shaped like `readings`. The pipeline is reported as a ratio of these.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import NewTopic

from citystream.bench.fleet import BenchFleet
from services.common.kafka import access_of, make_admin, make_producer
from services.common.settings import KafkaAccess
from services.ingest.kafka_batches import send_batched
from services.ingest.records import OutRecord

PARTITIONS = 6


async def kafka_ceiling(bootstrap: KafkaAccess | str, topic: str, fleet: BenchFleet, count: int, *,
                        batched: bool = True) -> float:
    """Readings/s for `count` records produced (acks=all, idempotent, same compression) and consumed back.

    `batched`: records handed to aiokafka as full record batches per partition (`send_batch`, as the ingest does);
    otherwise one `send()` per record, aiokafka's ordinary API."""
    admin = make_admin(bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()
    payloads = []
    while len(payloads) < count:
        batch = fleet.next_batch(1000, 9 * 10**12).payloads
        payloads.extend((p["sensor_id"].encode(), orjson.dumps(p)) for p in batch)
    consumer = AIOKafkaConsumer(**access_of(bootstrap).client_options(), enable_auto_commit=False,
                                max_partition_fetch_bytes=4 << 20)
    await consumer.start()
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    producer = make_producer(bootstrap, "bench-ceiling", linger_ms=20)
    await producer.start()
    started = time.perf_counter()

    async def produce() -> None:
        futures: list[asyncio.Future] = []
        if batched:  # full batches per partition, as the ingest's GroupSender builds them under load
            await send_batched(producer, [OutRecord(topic, key, value, []) for key, value in payloads], str, futures)
        else:
            futures = [await producer.send(topic, value, key=key) for key, value in payloads]
        await asyncio.gather(*futures)

    async def consume() -> None:
        seen = 0
        while seen < count:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for records in batch.values():
                for record in records:
                    orjson.loads(record.value)  # the pipeline parses every record; so does the ceiling
                seen += sum(len(records) for records in batch.values())

    try:
        await asyncio.wait_for(asyncio.gather(produce(), consume()), timeout=300)
    finally:
        await producer.stop()
        await consumer.stop()
    return count / (time.perf_counter() - started)


async def copy_ceiling(url: str, fleet: BenchFleet, count: int, batch: int = 5000) -> float:
    """Rows/s of plain COPY of reading rows into a hypertable shaped like `readings` (primary key included)."""
    connection = await asyncpg.connect(url, timeout=10)
    try:
        # COPY is binary: jsonb's binary form is a version byte (1) followed by the JSON text.
        await connection.set_type_codec("jsonb", encoder=lambda v: b"\x01" + orjson.dumps(v),
                                        decoder=lambda b: orjson.loads(b[1:]), schema="pg_catalog", format="binary")
        await connection.execute("CREATE TABLE bench_copy_ceiling (LIKE readings INCLUDING ALL)")
        await connection.execute("SELECT create_hypertable('bench_copy_ceiling', by_range('observed_at', "
                                 "INTERVAL '1 day'))")
        now = datetime.now(UTC)
        rows = []
        while len(rows) < count:
            payloads = fleet.next_batch(1000, 8 * 10**12).payloads
            rows.extend((now, p["sensor_id"], p["seq"], "traffic", now, 1, p["metrics"]) for p in payloads)
        columns = ["observed_at", "sensor_id", "seq", "domain", "received_at", "register_version", "metrics"]
        started = time.perf_counter()
        for start in range(0, count, batch):
            await connection.copy_records_to_table("bench_copy_ceiling", records=rows[start:start + batch],
                                                   columns=columns)
        return count / (time.perf_counter() - started)
    finally:
        await connection.close()
