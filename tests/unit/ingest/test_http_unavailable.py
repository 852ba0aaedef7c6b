"""With Kafka not acknowledging, HTTP ingest answers 503 with Retry-After once the ack deadline passes."""

from __future__ import annotations

import asyncio

import httpx

from services.common.readiness import CheckResult
from services.ingest.gate import GateLimits
from services.ingest.http_app import create_app
from services.ingest.publisher import Publisher
from services.ingest.runtime import GateRuntime
from services.ingest.settings import IngestSettings
from tests.support.ingest_factories import new_credential, reading, registration


class RecordBatch:
    def __init__(self) -> None:
        self.records: list[dict] = []

    def append(self, **record):
        self.records.append(record)
        return record  # aiokafka returns metadata; None would mean "batch full"


class SilentProducer:
    """A producer whose acks never come, as when the broker is unreachable."""

    def __init__(self) -> None:
        self.sent = 0

    async def partitions_for(self, topic):
        return {0, 1}

    def create_batch(self) -> RecordBatch:
        return RecordBatch()

    async def send_batch(self, batch, topic, *, partition):
        self.sent += len(batch.records)  # records handed over
        return asyncio.get_running_loop().create_future()


class StubView:
    def __init__(self, state) -> None:
        self.state = state
        self.ready = asyncio.Event()
        self.ready.set()


async def test_no_ack_in_time_gives_503_with_retry_after():
    from services.ingest.register_state import RegisterState

    key, stored = new_credential()
    state = RegisterState()
    state.put(registration("traffic-unit-503", stored))
    settings = IngestSettings(ack_timeout_s=0.2, retry_after_s=7)
    producer = SilentProducer()
    runtime = GateRuntime(settings, StubView(state), producer, Publisher(producer, settings.topic, 0.2, "http"),
                          GateLimits())
    runtime.producer_started.set()
    runtime.kafka.last = CheckResult(ok=True, detail="answering")
    transport = httpx.ASGITransport(app=create_app(settings, runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        response = await client.post("/v1/readings", json={"readings": [reading(1), reading(2)]},
                                     headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "7"
    assert producer.sent == 2


async def test_shared_quota_store_unreachable_gives_503_with_retry_after_and_admits_nothing():
    """With a shared quota, readings that need tokens while PostgreSQL cannot be reached are answered 503 with
    Retry-After (never admitted unmetered, never a 500), and nothing is published."""
    from services.ingest.leases import LeasedRateLimiter
    from services.ingest.quota_store import SharedBuckets
    from services.ingest.register_state import RegisterState

    key, stored = new_credential()
    state = RegisterState()
    state.put(registration("traffic-unit-quota", stored, rate_limit_per_minute=60))
    settings = IngestSettings(retry_after_s=4, http_shared_quota=True, quota_lease_timeout_s=0.5)
    producer = SilentProducer()
    # Port 1 on loopback: nothing listens there, as with a database that is down.
    buckets = SharedBuckets("postgresql://citystream_app:citystream_app@127.0.0.1:1/citystream", 0.5)
    runtime = GateRuntime(settings, StubView(state), producer, Publisher(producer, settings.topic, 0.2, "http"),
                          GateLimits(), LeasedRateLimiter(), shared_quota=buckets)
    runtime.producer_started.set()
    runtime.kafka.last = CheckResult(ok=True, detail="answering")
    transport = httpx.ASGITransport(app=create_app(settings, runtime))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            response = await client.post("/v1/readings", json={"readings": [reading(1), reading(2)]},
                                         headers={"Authorization": f"Bearer {key}"})
    finally:
        await buckets.close()
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "4"
    assert response.json()["reason"] == "UNAVAILABLE" and "rate-limit" in response.json()["detail"]
    assert producer.sent == 0
