"""Unauthenticated HTTP traffic is counted, not stored: a request whose credential fails leaves at most one row in
`rejections` however many readings it carried, and a client address that keeps failing gets 429 before any work."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from prometheus_client import REGISTRY

from schemas.rejections import RejectedReading
from schemas.topics import REJECTED_READINGS
from services.ingest.sink_worker import SinkWorker
from tests.integration.ingest.helpers import (
    READINGS_TOPICS,
    bearer,
    drain,
    http_ingest,
    ingest_settings,
    publish_register,
)
from tests.support.ingest_factories import new_credential, reading, registration


def refused_requests(reason: str) -> float:
    return REGISTRY.get_sample_value("citystream_ingest_http_requests_refused_total", {"reason": reason}) or 0.0


async def rejection_rows(database_url: str, sensor_id: str) -> list:
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetch("SELECT reason, detail, field, payload FROM rejections WHERE sensor_id = $1"
                                      " ORDER BY received_at", sensor_id)
    finally:
        await connection.close()


async def test_a_bad_request_of_10000_readings_stores_one_row_through_the_real_sink(settings):
    uid = uuid.uuid4().hex[:8]
    key, stored = new_credential()
    sensor = f"traffic-{uid}-anon"
    await publish_register(settings, registration(sensor, stored))
    config = ingest_settings(settings, max_body_bytes=4 * 1024 * 1024)
    sink = SinkWorker(config)
    sink_task = asyncio.create_task(sink.run())
    wrong = key.split(".")[0] + ".not-the-secret"
    before = refused_requests("BAD_CREDENTIALS")
    try:
        async with http_ingest(config) as (client, _):
            batch = {"readings": [reading(n, sensor_id=sensor) for n in range(10_000)]}
            response = await client.post("/v1/readings", json=batch, headers=bearer(wrong))
            assert response.status_code == 401, response.text
            body = response.json()
            assert (body["reason"], body["rejected"], body["accepted"]) == ("BAD_CREDENTIALS", 10_000, 0)
            assert "outcomes" not in body  # one summary, not 10,000 items
            assert len(response.content) < 1024
            # A control the sink stores after the refusal: same key, same partition of the rejected topic, so once
            # its three rows are in, the refusal's record has been consumed too.
            control = await client.post("/v1/readings", headers=bearer(key), json={
                "readings": [reading(n, sensor_id=sensor, averageVehicleSpeed=999.0) for n in range(3)]})
            assert control.status_code == 422, control.text
        rows = []
        for _ in range(120):
            rows = await rejection_rows(settings.database_url, sensor)
            if sum(row["reason"] == "OUT_OF_RANGE" for row in rows) == 3:
                break
            await asyncio.sleep(0.5)
    finally:
        sink.stopping.set()
        await asyncio.wait_for(sink_task, 30)
    assert sorted(row["reason"] for row in rows) == ["BAD_CREDENTIALS", "OUT_OF_RANGE", "OUT_OF_RANGE",
                                                     "OUT_OF_RANGE"], rows
    refusal = next(row for row in rows if row["reason"] == "BAD_CREDENTIALS")
    assert refusal["field"] == "credential" and "10000 readings, not stored" in refusal["detail"]
    assert refusal["payload"] == '{"readings": 10000}'  # the count, never the readings
    assert refused_requests("BAD_CREDENTIALS") == before + 1
    assert await drain(settings, *READINGS_TOPICS) == []


async def test_a_flood_of_failing_requests_gets_429_while_the_address_authenticated_traffic_passes(settings):
    uid = uuid.uuid4().hex[:8]
    key, stored = new_credential()
    sensor = f"traffic-{uid}-flood"
    await publish_register(settings, registration(sensor, stored))
    config = ingest_settings(settings, auth_failures_burst=3, auth_failures_per_minute=1)
    before_limited = refused_requests("RATE_LIMITED")
    async with http_ingest(config) as (client, _):
        statuses, retry_after = [], None
        for n in range(20):
            headers = bearer("kzz.wrong") if n % 2 else {}  # a wrong credential, or none at all
            response = await client.post("/v1/readings", headers=headers,
                                         json={"readings": [reading(m, sensor_id=sensor) for m in range(100)]})
            statuses.append(response.status_code)
            if response.status_code == 429:
                retry_after = int(response.headers["Retry-After"])
                assert response.json()["reason"] == "RATE_LIMITED"
        assert statuses == [401] * 3 + [429] * 17
        assert retry_after is not None and 1 <= retry_after <= 60
        # The limit is on failing requests: the sensor's own traffic from the same address still gets in.
        good = await client.post("/v1/readings", headers=bearer(key), json={"readings": [reading(1)]})
        assert good.status_code == 200, good.text
    assert refused_requests("RATE_LIMITED") == before_limited + 17
    letters = [RejectedReading.model_validate_json(r.value) for r in await drain(settings, REJECTED_READINGS)]
    assert [(letter.reason.value, letter.payload) for letter in letters] == [("BAD_CREDENTIALS", {"readings": 100})] * 3
