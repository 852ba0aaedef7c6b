"""Gate records → one aiokafka record batch per topic partition (`create_batch` / `send_batch`), partitioned as
DefaultPartitioner does (services/common/kafka_batches.py, shared with the anomaly worker).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from services.common.kafka_batches import partition_of
from services.ingest.records import OutRecord

__all__ = ["GroupSender", "send_batched"]


async def send_batched(producer, records: Sequence[OutRecord], topic_of: Callable[[str], str],
                       futures: list[asyncio.Future]) -> None:
    """Append every record to its partition's batch and hand the batches to the producer (idempotence and acks
    apply per batch as for `send`). Each batch's future is added to `futures` as soon as it exists (so the caller
    sees them even when this is cancelled half-way); the caller awaits them."""
    # catalogue topic → (deployed topic, its partitions), looked up once per call rather than once per record
    destinations: dict[str, tuple[str, list[int]]] = {}
    building: dict[tuple[str, int], object] = {}
    for record in records:
        found = destinations.get(record.topic)
        if found is None:
            deployed = topic_of(record.topic)
            found = destinations[record.topic] = deployed, sorted(await producer.partitions_for(deployed))
        topic, partitions = found
        partition = partition_of(record.key, partitions)
        batch = building.get((topic, partition))
        if batch is None:
            batch = building[topic, partition] = producer.create_batch()
        if batch.append(timestamp=None, key=record.key, value=record.value, headers=record.headers) is None:
            # Full: send it and start the next one (an empty batch always takes its first record).
            futures.append(await producer.send_batch(batch, topic, partition=partition))
            batch = building[topic, partition] = producer.create_batch()
            batch.append(timestamp=None, key=record.key, value=record.value, headers=record.headers)
    for (topic, partition), batch in building.items():
        futures.append(await producer.send_batch(batch, topic, partition=partition))


class GroupSender:
    """Hands the records of concurrent publishes to one producer together (group commit).

    aiokafka queues at most one record batch per partition: a second `send_batch` for that partition waits until
    the first is drained, so concurrent HTTP requests each sending their own batches queue behind one another (and
    can starve past the request timeout). Here callers add their records to a waiting group; one flusher task takes
    the whole group, appends it to one batch per partition and hands those over, while the next group gathers.
    Each caller gets the futures of its group's batches: it is acknowledged when all of them are.
    """

    def __init__(self, producer, topic_of: Callable[[str], str]) -> None:
        self.producer = producer
        self._topic_of = topic_of
        self._waiting: list[tuple[Sequence[OutRecord], asyncio.Future]] = []
        self._flusher: asyncio.Task | None = None

    async def send(self, records: Sequence[OutRecord]) -> list[asyncio.Future]:
        handed_over = asyncio.get_running_loop().create_future()
        self._waiting.append((records, handed_over))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="kafka-group-sender")
        return await handed_over  # cancelling this caller does not cancel the flusher (the others need it)

    async def _flush(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            futures: list[asyncio.Future] = []
            try:
                await send_batched(self.producer, [record for records, _ in group for record in records],
                                   self._topic_of, futures)
            except BaseException as problem:
                for future in futures:  # nobody awaits them now; keep asyncio quiet about their exceptions
                    future.add_done_callback(_retrieve)
                for _, handed_over in group:
                    if not handed_over.done():
                        handed_over.set_exception(problem if isinstance(problem, Exception) else
                                                  RuntimeError(f"sender stopped: {problem!r}"))
                if not isinstance(problem, Exception):
                    raise
                continue
            for future in futures:  # callers that gave up (timed out) no longer await theirs
                future.add_done_callback(_retrieve)
            for _, handed_over in group:
                if not handed_over.done():
                    handed_over.set_result(futures)

    async def close(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        waiting, self._waiting = self._waiting, []
        for _, handed_over in waiting:
            if not handed_over.done():
                handed_over.set_exception(RuntimeError("sender closed"))


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()
