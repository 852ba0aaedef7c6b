"""What a gate process holds while it runs: the register view, the producer (inside a Publisher, which renews it)
and the rate limiter."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from services.common.kafka import make_producer
from services.ingest.gate import GateLimits
from services.ingest.publisher import Publisher
from services.ingest.ratelimit import RateLimiter
from services.ingest.register_view import RegisterView
from services.ingest.settings import IngestSettings

log = logging.getLogger(__name__)


@dataclass
class GateRuntime:
    settings: IngestSettings
    view: RegisterView
    producer: object
    publisher: Publisher
    limits: GateLimits
    limiter: RateLimiter = field(default_factory=RateLimiter)
    producer_started: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task] = field(default_factory=list)

    @classmethod
    def build(cls, settings: IngestSettings, path: str) -> GateRuntime:
        def new_producer():
            # linger 0: the Publisher's GroupSender already gathers concurrent publishes into full batches.
            return make_producer(settings.kafka_bootstrap, f"ingest-{path}", linger_ms=0, request_timeout_ms=5_000)

        async def renew():
            producer = new_producer()
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            return producer

        producer = new_producer()
        limits = GateLimits(timedelta(seconds=settings.clock_skew_s), timedelta(seconds=settings.max_age_s))
        publisher = Publisher(producer, settings.topic, settings.ack_timeout_s, path, renew)
        return cls(settings, RegisterView.for_settings(settings), producer, publisher, limits)

    def start(self) -> None:
        """Start in the background: a process comes up (and says not ready) even while Kafka is down."""
        self.view.start()
        self._tasks.append(asyncio.create_task(self._start_producer(), name="producer-start"))

    async def wait_ready(self, timeout_s: float) -> None:
        await asyncio.wait_for(asyncio.gather(self.view.ready.wait(), self.producer_started.wait()), timeout_s)

    @property
    def ready(self) -> bool:
        return self.view.ready.is_set() and self.producer_started.is_set()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.view.stop()
        if self.producer_started.is_set():
            await self.publisher.close()  # the producer it holds now (it may have replaced the first one)

    async def _start_producer(self) -> None:
        backoff_s = 0.5
        while True:
            try:
                await self.producer.start()
            except Exception as problem:  # broker unreachable at start-up: retry, stay not-ready meanwhile
                log.warning("kafka producer not started (%r); retrying in %.1f s", problem, backoff_s)
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 10.0)
            else:
                self.producer_started.set()
                return
