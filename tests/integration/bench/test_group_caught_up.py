"""The benchmark reads the services' CPU once the sink's group has committed every readings partition to its end:
that moment comes from the broker (citystream.bench.accounting.wait_group_caught_up)."""

from __future__ import annotations

from aiokafka.admin import NewTopic

from citystream.bench.accounting import wait_group_caught_up
from services.common.kafka import make_admin, make_consumer, make_producer


async def test_a_group_is_caught_up_only_once_it_committed_every_partition_to_its_end(kafka, topic_prefix):
    topic, group = f"{topic_prefix}caught-up", f"{topic_prefix}caught-up-group"
    admin = make_admin(kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        await admin.close()
    producer = make_producer(kafka, "caught-up-test")
    await producer.start()
    try:
        for key in range(10):
            await producer.send_and_wait(topic, b"x", key=str(key).encode())
    finally:
        await producer.stop()
    assert await wait_group_caught_up(kafka, group, [topic], timeout_s=1.0) is None  # nothing committed yet
    consumer = make_consumer(kafka, group, topic)
    await consumer.start()
    try:
        seen = 0
        while seen < 10:
            seen += sum(len(records) for records in (await consumer.getmany(timeout_ms=1000)).values())
        await consumer.commit()
        assert await wait_group_caught_up(kafka, group, [topic], timeout_s=10.0) is not None
        async with make_producer(kafka, "caught-up-test") as late:
            await late.send_and_wait(topic, b"late", key=b"0")
        assert await wait_group_caught_up(kafka, group, [topic], timeout_s=1.0) is None  # one record uncommitted
    finally:
        await consumer.stop()
