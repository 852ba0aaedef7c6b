"""Materialises `citystream.register.sensors.v1` in memory: replay from the start, ready once caught up, then live."""

from __future__ import annotations

import asyncio

from schemas.topics import REGISTER_SENSORS
from services.common.compacted import CompactedTopicFollower
from services.common.settings import KafkaAccess
from services.ingest import metrics
from services.ingest.register_state import RegisterState


class RegisterView:
    """Follows the register topic with no consumer group; `state` is what the gate reads."""

    def __init__(self, kafka: KafkaAccess, topic: str, *, poll_ms: int = 100) -> None:
        self.state = RegisterState()
        self._follower = CompactedTopicFollower(
            kafka, topic, self.state.apply_record, client_id="ingest-register-view", poll_ms=poll_ms,
            on_batch=lambda: metrics.REGISTER_SENSORS.set(len(self.state)),
        )
        self.ready = self._follower.caught_up
        self._task: asyncio.Task | None = None

    @classmethod
    def for_settings(cls, settings) -> RegisterView:
        return cls(settings.kafka, settings.topic(REGISTER_SENSORS))

    def start(self) -> None:
        self._task = asyncio.create_task(self._follower.run_forever(), name="register-view")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def wait_ready(self, timeout_s: float) -> None:
        await asyncio.wait_for(self.ready.wait(), timeout_s)
