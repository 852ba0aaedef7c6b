"""PostgreSQL going away under a shared quota: ingest-http answers the readings that need a lease 503 with
Retry-After (never admitted unmetered, never a 500), and admits again once the database is back. The database is
reached through a TCP proxy the test stops, so the shared server is never touched; Kafka is a stand-in that acks."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from prometheus_client import REGISTRY

from services.common.readiness import CheckResult
from services.common.roles import APP_ROLE, with_role
from services.ingest.gate import GateLimits
from services.ingest.http_app import create_app
from services.ingest.leases import LeasedRateLimiter
from services.ingest.publisher import Publisher
from services.ingest.quota_store import SharedBuckets
from services.ingest.register_state import RegisterState
from services.ingest.runtime import GateRuntime
from services.ingest.settings import IngestSettings
from tests.support.ingest_factories import new_credential, reading, registration
from tests.support.tcp_proxy import TcpProxy
from tests.unit.ingest.test_http_unavailable import StubView
from tests.unit.ingest.test_publisher import FakeProducer


def leases_unavailable() -> float:
    return REGISTRY.get_sample_value("citystream_ingest_quota_leases_total", {"outcome": "unavailable"}) or 0.0


def through(proxy: TcpProxy, database_url: str) -> str:
    parts = urlsplit(with_role(database_url, APP_ROLE))
    return parts._replace(netloc=f"{APP_ROLE}:{APP_ROLE}@127.0.0.1:{proxy.port}").geturl()


async def test_database_down_gives_503_with_retry_after_then_recovers(fresh_database_url):
    target = urlsplit(fresh_database_url)
    proxy = TcpProxy(target.hostname, target.port)
    await proxy.start()
    key, stored = new_credential()
    state = RegisterState()
    state.put(registration("traffic-quota-outage", stored, rate_limit_per_minute=6000))  # leases of 600
    settings = IngestSettings(retry_after_s=3, http_shared_quota=True, quota_lease_timeout_s=1.0)
    producer = FakeProducer()
    buckets = SharedBuckets(through(proxy, fresh_database_url), settings.quota_lease_timeout_s)
    runtime = GateRuntime(settings, StubView(state), producer, Publisher(producer, settings.topic, 2.0, "http"),
                          GateLimits(), LeasedRateLimiter(), shared_quota=buckets)
    runtime.producer_started.set()
    runtime.kafka.last = CheckResult(ok=True, detail="answering")
    headers = {"Authorization": f"Bearer {key}"}
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, runtime)),
                                     base_url="http://ingest") as client:
            async def post(first_seq: int, count: int) -> httpx.Response:
                return await client.post("/v1/readings", headers=headers,
                                         json={"readings": [reading(first_seq + i) for i in range(count)]})

            # Up: the first batch leases 600 tokens (a tenth of 6000/min) over a pooled connection.
            assert (await post(1, 10)).status_code == 200
            assert runtime.limiter.leased_tokens("traffic-quota-outage") == 590
            await proxy.stop()  # the pooled connection is cut and no new one can be made
            # Readings covered by the lease already held are still metered, so still admitted.
            assert (await post(100, 590)).status_code == 200
            sent_before = producer.sent
            unavailable_before = leases_unavailable()
            # The lease is spent: the next readings need the database, and get 503, not an admission.
            for attempt in range(3):
                down = await post(1000 + attempt, 1)
                assert down.status_code == 503, down.text
                assert down.headers["Retry-After"] == "3"
                assert down.json()["reason"] == "UNAVAILABLE"
            assert producer.sent == sent_before  # nothing of those batches was published
            assert leases_unavailable() == unavailable_before + 3
            await proxy.start()  # back on the same port, as a restarted database
            back = await post(2000, 5)
            assert back.status_code == 200, back.text
            assert back.json()["accepted"] == 5
    finally:
        await buckets.close()
        await proxy.stop()
