"""What a gate process holds while it runs: the register view, the producer (inside a Publisher, which renews it)
and the rate limiter (its own buckets, or with a shared quota leased tokens and the store they come from).
Ready = register view caught up, producer started and the broker answering a metadata request within
`kafka_check_timeout_s` (asked every `kafka_check_s` by the shared KafkaReachability, whose last answer the hot path
reads: a batch is refused at once while Kafka is known down)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from schemas.topics import REGISTER_SENSORS
from services.common.kafka import make_producer
from services.common.readiness import CheckResult, KafkaReachability, check
from services.ingest.gate import GateLimits
from services.ingest.leases import LeasedRateLimiter
from services.ingest.publisher import Publisher
from services.ingest.quota_store import SharedBuckets
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
    limiter: RateLimiter | LeasedRateLimiter = field(default_factory=RateLimiter)
    # Set with CITYSTREAM_INGEST_HTTP_SHARED_QUOTA on the HTTP path: `limiter` is then a LeasedRateLimiter.
    shared_quota: SharedBuckets | None = None
    # Whether a broker answers; build() gives it the deployed register topic and the configured timings.
    kafka: KafkaReachability = field(default_factory=lambda: KafkaReachability(REGISTER_SENSORS))
    producer_started: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task] = field(default_factory=list)

    @classmethod
    def build(cls, settings: IngestSettings, path: str) -> GateRuntime:
        def new_producer():
            # linger 0: the Publisher's GroupSender already gathers concurrent publishes into full batches.
            return make_producer(settings.kafka, f"ingest-{path}", linger_ms=0, request_timeout_ms=5_000)

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
        kafka = KafkaReachability(settings.topic(REGISTER_SENSORS), settings.kafka_check_s,
                                  settings.kafka_check_timeout_s)
        shared = path == "http" and settings.http_shared_quota
        buckets = SharedBuckets(settings.database_url, settings.quota_lease_timeout_s) if shared else None
        return cls(settings, RegisterView.for_settings(settings), producer, publisher, limits,
                   LeasedRateLimiter() if shared else RateLimiter(), kafka=kafka, shared_quota=buckets)

    def start(self) -> None:
        """Start in the background: a process comes up (and says not ready) even while Kafka is down."""
        self.view.start()
        self._tasks.append(asyncio.create_task(self._start_producer(), name="producer-start"))

    async def wait_ready(self, timeout_s: float) -> None:
        await asyncio.wait_for(asyncio.gather(self.view.ready.wait(), self.producer_started.wait()), timeout_s)

    @property
    def kafka_reachable(self) -> bool:
        return self.kafka.last.ok

    @property
    def ready(self) -> bool:
        return self.view.ready.is_set() and self.producer_started.is_set() and self.kafka_reachable

    def checks(self) -> dict[str, CheckResult]:
        """The /readyz checks of an ingest process (HTTP or gate): the readiness contract's `checks`."""
        view_ready = self.view.ready.is_set()
        kafka = self.kafka.last
        if not self.producer_started.is_set():
            kafka = CheckResult(ok=False, detail="producer_not_started")
        return {"register": check(view_ready, f"{len(self.view.state)} sensors", "catching_up"), "kafka": kafka}

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.view.stop()
        if self.shared_quota is not None:
            await self.shared_quota.close()
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
                await self.kafka.check(self._client())
                self.producer_started.set()
                self._tasks.append(asyncio.create_task(self.kafka.watch(self._client), name="kafka-check"))
                return

    def _client(self):
        """The client of the producer in use now (the Publisher renews it after a failure)."""
        return getattr(self.publisher.producer, "client", None)
