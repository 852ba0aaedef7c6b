"""Consumer lag of the readings topics: per assigned partition, readings not yet judged. `ConsumerProgress` is the
pure bookkeeping; `BrokerOffsets` asks the broker for log-end and committed offsets with its own two clients (Faust's
consumer runs in its own thread, and its offset calls wait behind that thread's fetches)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.common.kafka import make_admin, make_consumer
from services.common.settings import KafkaAccess


class ConsumerProgress:
    """Next offset to judge per (topic, partition), learned from the readings judged since the assignment.

    Lag = log-end offset − next offset to judge. A reading counts once judged (its state may still wait for the
    next flush; detection, which this measures, is done). Before a partition's first judged reading since it was
    assigned, the offset it resumes from (the group's committed offset) stands in for it."""

    def __init__(self) -> None:
        self.next_offsets: dict[Hashable, int] = {}

    def judged(self, tp: Hashable, offset: int) -> None:
        self.next_offsets[tp] = offset + 1

    def assigned(self) -> None:
        """A rebalance resumes every partition from its committed offset: forget what was judged before."""
        self.next_offsets.clear()

    def lag(self, partitions: Iterable[Hashable], end_offsets: Mapping[Hashable, int | None],
            resume_offsets: Mapping[Hashable, int | None]) -> dict[Hashable, int]:
        """Readings not yet judged per partition (partitions whose offsets are unknown are left out)."""
        lags = {}
        for tp in partitions:
            end = end_offsets.get(tp)
            done = self.next_offsets.get(tp)
            if done is None:
                done = resume_offsets.get(tp)
            if end is not None and done is not None:
                lags[tp] = max(0, end - done)
        return lags


class BrokerOffsets:
    """Log-end offsets (ListOffsets) and where a group resumes each partition (its committed offset, else the log
    start, as the worker's `auto_offset_reset=earliest` does). Read-only: it never joins the group."""

    def __init__(self, kafka: KafkaAccess, group_id: str, timeout_s: float) -> None:
        self.kafka, self.group_id, self.timeout_ms = kafka, group_id, max(int(timeout_s * 1000), 1000)
        self.consumer: AIOKafkaConsumer | None = None  # created on first use: aiokafka wants a running loop
        self.admin: AIOKafkaAdminClient | None = None

    async def start(self) -> None:
        if self.consumer is not None:
            return
        consumer = make_consumer(self.kafka, None, enable_auto_commit=False,
                                    request_timeout_ms=self.timeout_ms)
        admin = make_admin(self.kafka, request_timeout_ms=self.timeout_ms)
        try:
            await consumer.start()
            await admin.start()
        except BaseException:
            await consumer.stop()
            await admin.close()
            raise
        self.consumer, self.admin = consumer, admin

    async def stop(self) -> None:
        consumer, admin, self.consumer, self.admin = self.consumer, self.admin, None, None
        if consumer is not None:
            await consumer.stop()
            await admin.close()

    async def end_offsets(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        await self.start()
        assert self.consumer is not None
        found = await self.consumer.end_offsets([TopicPartition(*tp) for tp in partitions])
        return {(tp.topic, tp.partition): offset for tp, offset in found.items()}

    async def resume_offsets(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        await self.start()
        assert self.consumer is not None and self.admin is not None
        tps = [TopicPartition(*tp) for tp in partitions]
        committed = await self.admin.list_consumer_group_offsets(self.group_id, partitions=tps)
        resume = {(tp.topic, tp.partition): meta.offset for tp, meta in committed.items() if meta.offset >= 0}
        never = [tp for tp in tps if (tp.topic, tp.partition) not in resume]
        if never:
            starts = await self.consumer.beginning_offsets(never)
            resume.update({(tp.topic, tp.partition): offset for tp, offset in starts.items()})
        return resume
