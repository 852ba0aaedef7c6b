"""Follows a compacted topic (e.g. `citystream.register.sensors.v1`) from its beginning, with no consumer group.

Every process that materialises the register uses this: replay everything, say when it has caught up with the end
offsets seen at start, then apply changes as they arrive. The caller owns the state; it passes `apply(key, value)`
(value None = tombstone). Broker trouble is retried with backoff while the last state stays in use.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import TopicPartition

from services.common.kafka import make_admin, make_consumer
from services.common.settings import KafkaAccess

log = logging.getLogger(__name__)

Apply = Callable[[bytes | None, bytes | None], None]


async def topic_partitions(kafka: KafkaAccess | str, topic: str, client_id: str = "citystream-admin") -> list[TopicPartition]:
    """The partitions of `topic` ([] when it does not exist). A group-less consumer has no metadata for a topic it
    is not assigned yet, so ask the cluster through the admin client (which never auto-creates the topic)."""
    admin = make_admin(kafka, client_id=client_id)
    try:
        await admin.start()
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [TopicPartition(topic, part["partition"]) for entry in described if entry["error_code"] == 0
            for part in sorted(entry["partitions"], key=lambda p: p["partition"])]


async def wait_for_partitions(kafka: KafkaAccess | str, topic: str, client_id: str, attempts: int = 50) -> list[TopicPartition]:
    for _ in range(attempts):
        found = await topic_partitions(kafka, topic, client_id)
        if found:
            return found
        await asyncio.sleep(0.2)
    raise RuntimeError(f"topic {topic} does not exist; run `citystream topics create`")


class CompactedTopicFollower:
    """Replays `topic` into `apply`, sets `caught_up` once the start's end offsets are reached, then follows."""

    def __init__(self, kafka: KafkaAccess | str, topic: str, apply: Apply, *, client_id: str, poll_ms: int = 100,
                 on_batch: Callable[[], None] | None = None) -> None:
        self.kafka, self.topic, self.apply, self.client_id = kafka, topic, apply, client_id
        self.poll_ms = poll_ms
        self.on_batch = on_batch
        self.caught_up = asyncio.Event()

    async def run_forever(self) -> None:
        """Follow until cancelled, reconnecting with backoff when the broker or the topic goes away."""
        backoff_s = 0.5
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                if asyncio.current_task().cancelling():
                    raise
                log.warning("%s consumer was cancelled from inside aiokafka; restarting", self.topic)
            except Exception:  # broker gone or topic missing: keep the last state and retry
                log.exception("lost %s; retrying in %.1f s", self.topic, backoff_s)
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 10.0)

    async def _follow(self) -> None:
        consumer = make_consumer(self.kafka, None, client_id=self.client_id)
        try:
            await consumer.start()  # inside the try: a start that fails must still close the client
            partitions = await wait_for_partitions(self.kafka, self.topic, self.client_id)
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            end_offsets = await consumer.end_offsets(partitions)
            log.info("replaying %s up to %s", self.topic, {tp.partition: o for tp, o in end_offsets.items()})
            while True:
                batch = await consumer.getmany(timeout_ms=self.poll_ms)
                for records in batch.values():
                    for record in records:
                        self.apply(record.key, record.value)
                if not self.caught_up.is_set() and await _reached(consumer, end_offsets):
                    log.info("caught up with %s", self.topic)
                    self.caught_up.set()
                if self.on_batch is not None:
                    self.on_batch()
        finally:
            await consumer.stop()


async def _reached(consumer, end_offsets: dict[TopicPartition, int]) -> bool:
    for partition, end in end_offsets.items():
        if await consumer.position(partition) < end:
            return False
    return True
