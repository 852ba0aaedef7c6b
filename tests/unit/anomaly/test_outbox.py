"""The worker's outbox: records go to the producer in order, one batch per partition, all acks are awaited,
retriable failures are resent, and a record refused for good raises SendFailed instead of being dropped."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import MessageSizeTooLargeError, NotLeaderForPartitionError

from services.anomaly import outbox as outbox_module
from services.anomaly.outbox import Outbox, SendFailed
from services.common.kafka_batches import partition_of
from tests.unit.anomaly.fakes import FakeProducer


async def test_records_are_sent_in_order_by_key_partition_and_the_outbox_is_emptied():
    box, producer = Outbox(), FakeProducer()
    for i in range(5):
        box.add("alerts", f"s-{i % 2}".encode(), f"v{i}".encode(), [("schema", b"x")])
    box.add("changelog", b'"s-0"', b"state", partition=3)
    await box.send(producer)
    for key, values in {b"s-0": [b"v0", b"v2", b"v4"], b"s-1": [b"v1", b"v3"]}.items():
        sent = [(partition, value) for topic, partition, k, value in producer.sent if k == key]
        assert [value for _, value in sent] == values, "a key's records keep their order"
        assert {partition for partition, _ in sent} == {partition_of(key, [0, 1, 2, 3])}, "DefaultPartitioner"
    assert ("changelog", 3, b'"s-0"', b"state") in producer.sent, "an explicit partition is kept"
    assert box.records == []


async def test_a_retriable_failure_is_sent_again(monkeypatch):
    monkeypatch.setattr(outbox_module, "MAX_BACKOFF_S", 0.0)
    box = Outbox()
    producer = FakeProducer({("alerts", b"a"): [NotLeaderForPartitionError(), NotLeaderForPartitionError()]})
    box.add("alerts", b"a", b"1")
    box.add("alerts", b"b", b"3")
    await asyncio.wait_for(box.send(producer), timeout=5)
    assert [key for _, _, key, _ in producer.sent].count(b"a") == 3, "resent until acknowledged"
    assert ("acked", "alerts", partition_of(b"a", [0, 1, 2, 3]), b"a") in producer.log


async def test_a_record_refused_for_good_raises_instead_of_being_dropped():
    box = Outbox()
    producer = FakeProducer({("alerts", b"big"): [MessageSizeTooLargeError()]})
    box.add("alerts", b"big", b"2")
    with pytest.raises(SendFailed, match="MessageSizeTooLarge"):
        await asyncio.wait_for(box.send(producer), timeout=5)
    assert [key for _, _, key, _ in producer.sent].count(b"big") == 1, "not retriable: not resent"
