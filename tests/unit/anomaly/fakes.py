"""In-memory stand-ins for the worker's Kafka clients: a producer with aiokafka's batch API, consumer records, a
reader (group-less consumer) and a consumer group, all writing to one shared event log so tests can check order."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import RecordMetadata


class FakeBatch:
    def __init__(self, max_records: int) -> None:
        self.records: list[tuple[bytes | None, bytes | None, Any]] = []
        self.max_records = max_records

    def append(self, *, timestamp, key, value, headers):
        if len(self.records) >= self.max_records:
            return None
        self.records.append((key, value, headers))
        return object()


class FakeProducer:
    """Acknowledges every batch, except a batch holding a (topic, key) with a scripted failure queued: that batch
    fails with the next one. `sent` lists every record handed over: (topic, partition, key, value)."""

    def __init__(self, failures: dict[tuple[str, bytes], list[Exception]] | None = None, *, batch_records: int = 1000,
                 log: list | None = None, partitions: int = 4) -> None:
        self.failures = failures or {}
        self.sent: list[tuple[str, int, bytes | None, bytes | None]] = []
        self.acked: list[tuple[str, int, bytes | None, bytes | None]] = []
        self.headers: list[dict[str, bytes]] = []  # the headers of each record in `sent`, same order
        self.batch_records = batch_records
        self.log = log if log is not None else []
        self.partitions = partitions
        self.end_offsets: dict[tuple[str, int], int] = {}  # next offset per partition of acknowledged records

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.partitions))

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.batch_records)

    async def send_batch(self, batch: FakeBatch, topic: str, partition: int) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.sent += [(topic, partition, key, value) for key, value, _ in batch.records]
        self.headers += [dict(headers or ()) for _, _, headers in batch.records]
        for key, _, _ in batch.records:
            queued = self.failures.get((topic, key))
            if queued:
                future.set_exception(queued.pop(0))
                return future
        self.log += [("acked", topic, partition, key) for key, _, _ in batch.records]
        self.acked += [(topic, partition, key, value) for key, value, _ in batch.records]
        base = self.end_offsets.get((topic, partition), 0)
        self.end_offsets[topic, partition] = base + len(batch.records)
        future.set_result(RecordMetadata(topic, partition, TopicPartition(topic, partition), base, -1, 0, 0))
        return future


@dataclass
class Record:
    """What the worker reads of an aiokafka ConsumerRecord."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int = 1_767_600_000_000


@dataclass
class FakeLog:
    """A topic's partitions as lists of records (offset = index)."""

    partitions: dict[tuple[str, int], list[Record]] = field(default_factory=dict)

    def append(self, topic: str, partition: int, key: bytes, value: bytes) -> None:
        records = self.partitions.setdefault((topic, partition), [])
        records.append(Record(topic, partition, len(records), key, value))


class FakeReader:
    """A group-less consumer over a FakeLog: assign, seek, getmany (at most `take` records per partition)."""

    def __init__(self, log: FakeLog, take: int = 10) -> None:
        self.log, self.take = log, take
        self.positions: dict[tuple[str, int], int] = {}
        self.on_fetch = None  # called after each fetch (a test's hook to rebalance mid-stream)

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.positions = {(tp.topic, tp.partition): 0 for tp in partitions}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[(tp.topic, tp.partition)] = offset

    async def getmany(self, timeout_ms: int, max_records: int) -> dict:
        await asyncio.sleep(0)
        batch = {}
        for (topic, partition), at in self.positions.items():
            records = self.log.partitions.get((topic, partition), [])[at:at + self.take]
            if records:
                batch[TopicPartition(topic, partition)] = records
                self.positions[(topic, partition)] = at + len(records)
        if self.on_fetch is not None:
            self.on_fetch()
        return batch


class FakeGroup:
    """The consumer group: an assignment, committed offsets, and every commit in the shared log."""

    def __init__(self, partitions: set[tuple[str, int]], log: list) -> None:
        self.partitions, self.log = partitions, log
        self.committed: dict[tuple[str, int], int] = {}
        self.rebalancing = False

    def ready_assignment(self):
        return None if self.rebalancing else set(self.partitions)

    async def commit(self, offsets) -> None:
        self.log.append(("commit", dict(offsets)))
        self.committed.update(offsets)

    async def resume_offsets(self, partitions):
        return {tp: self.committed.get(tp, 0) for tp in partitions}
