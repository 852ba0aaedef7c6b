"""Materialises `citystream.register.sensors.v1` in memory: replay from the start, ready once caught up, then live."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from schemas.topics import REGISTER_SENSORS
from services.common.kafka import make_consumer
from services.ingest import metrics
from services.ingest.register_state import RegisterState

log = logging.getLogger(__name__)


class RegisterView:
    """Owns a group-less consumer on the register topic; `state` is what the gate reads."""

    def __init__(self, bootstrap: str, topic: str, *, poll_ms: int = 100) -> None:
        self.state = RegisterState()
        self.ready = asyncio.Event()
        self._bootstrap = bootstrap
        self._topic = topic
        self._poll_ms = poll_ms
        self._task: asyncio.Task | None = None

    @classmethod
    def for_settings(cls, settings) -> RegisterView:
        return cls(settings.kafka_bootstrap, settings.topic(REGISTER_SENSORS))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever(), name="register-view")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def wait_ready(self, timeout_s: float) -> None:
        await asyncio.wait_for(self.ready.wait(), timeout_s)

    async def _run_forever(self) -> None:
        backoff_s = 0.5
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                if asyncio.current_task().cancelling():
                    raise
                log.warning("register view consumer was cancelled from inside aiokafka; restarting")
            except Exception:  # broker gone or topic missing: keep the last state, retry; the gate keeps working
                log.exception("register view lost %s; retrying in %.1f s", self._topic, backoff_s)
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 10.0)

    async def _follow(self) -> None:
        consumer = make_consumer(self._bootstrap, None, client_id="ingest-register-view")
        await consumer.start()
        try:
            partitions = await self._partitions()
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            end_offsets = await consumer.end_offsets(partitions)
            log.info("replaying %s up to %s", self._topic, {tp.partition: o for tp, o in end_offsets.items()})
            while True:
                batch = await consumer.getmany(timeout_ms=self._poll_ms)
                for tp, records in batch.items():
                    for record in records:
                        self.state.apply_record(record.key, record.value)
                if not self.ready.is_set() and await _caught_up(consumer, end_offsets):
                    log.info("register view caught up: %d sensors", len(self.state))
                    self.ready.set()
                metrics.REGISTER_SENSORS.set(len(self.state))
        finally:
            await consumer.stop()

    async def _partitions(self) -> list[TopicPartition]:
        for _ in range(50):
            found = await topic_partitions(self._bootstrap, self._topic)
            if found:
                return found
            await asyncio.sleep(0.2)
        raise RuntimeError(f"register topic {self._topic} does not exist; run `citystream topics create`")


async def topic_partitions(bootstrap: str, topic: str) -> list[TopicPartition]:
    """The partitions of `topic` ([] when it does not exist). A group-less consumer has no metadata for topics it
    is not assigned yet, so ask the cluster through the admin client (which never auto-creates the topic)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="ingest-register-view")
    try:
        await admin.start()
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [TopicPartition(topic, part["partition"]) for entry in described if entry["error_code"] == 0
            for part in sorted(entry["partitions"], key=lambda p: p["partition"])]


async def _caught_up(consumer, end_offsets: dict) -> bool:
    for tp, end in end_offsets.items():
        if await consumer.position(tp) < end:
            return False
    return True
