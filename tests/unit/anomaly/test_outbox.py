"""The worker's outbox: records go to the producer in order, all acks are awaited, retriable failures are resent."""

from __future__ import annotations

import asyncio

from aiokafka.errors import MessageSizeTooLargeError, NotLeaderForPartitionError

from services.anomaly import outbox as outbox_module
from services.anomaly.outbox import Outbox


class FakeProducer:
    """Acknowledges every record, except the failures scripted per (topic, key) for their first sends."""

    def __init__(self, failures: dict[tuple[str, bytes], list[Exception]] | None = None) -> None:
        self.failures = failures or {}
        self.sent: list[tuple[str, bytes | None, bytes]] = []

    async def send(self, topic, key, value, partition, timestamp, headers):
        self.sent.append((topic, key, value))
        future = asyncio.get_running_loop().create_future()
        queued = self.failures.get((topic, key))
        if queued:
            future.set_exception(queued.pop(0))
        else:
            future.set_result(len(self.sent))
        return future


async def test_records_are_sent_in_order_and_the_outbox_is_emptied():
    box, producer = Outbox(), FakeProducer()
    for i in range(5):
        box.add("alerts", f"s-{i % 2}".encode(), f"v{i}".encode(), [("schema", b"x")])
    await box.send(producer)
    assert [value for _, _, value in producer.sent] == [b"v0", b"v1", b"v2", b"v3", b"v4"]
    assert box.records == []


async def test_a_retriable_failure_is_sent_again_and_a_fatal_one_is_not(monkeypatch):
    monkeypatch.setattr(outbox_module, "MAX_BACKOFF_S", 0.0)
    box = Outbox()
    producer = FakeProducer({("alerts", b"a"): [NotLeaderForPartitionError(), NotLeaderForPartitionError()],
                             ("alerts", b"big"): [MessageSizeTooLargeError()]})
    box.add("alerts", b"a", b"1")
    box.add("alerts", b"big", b"2")
    box.add("alerts", b"b", b"3")
    await asyncio.wait_for(box.send(producer), timeout=5)
    assert [key for _, key, _ in producer.sent].count(b"a") == 3, "resent until acknowledged"
    assert [key for _, key, _ in producer.sent].count(b"big") == 1, "not retriable: logged, not resent"
    assert [key for _, key, _ in producer.sent].count(b"b") == 1
