"""Accounting through the real broker and TimescaleDB: every (sensor_id, seq) that got a 2xx is stored exactly once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from schemas.common import Domain
from schemas.topics import readings_topic
from services.common.kafka import make_producer
from services.ingest.sink_worker import SinkWorker
from tests.integration.ingest.helpers import bearer, http_ingest, ingest_settings, publish_register
from tests.support.ingest_factories import new_credential, registration

METRIC = {Domain.TRAFFIC: "intensity", Domain.ENERGY: "activePower", Domain.WASTE: "fillingLevel"}


async def stored_keys(database_url: str, prefix: str) -> list[tuple[str, int]]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT sensor_id, seq FROM readings WHERE sensor_id LIKE $1", prefix + "%")
    finally:
        await connection.close()
    return [(row["sensor_id"], row["seq"]) for row in rows]


async def wait_for_rows(database_url: str, prefix: str, expected: int, timeout_s: float = 60) -> list:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    keys = await stored_keys(database_url, prefix)
    while len(keys) < expected and loop.time() < deadline:
        await asyncio.sleep(0.5)
        keys = await stored_keys(database_url, prefix)
    return keys


async def test_every_acknowledged_reading_is_stored_exactly_once(settings):
    uid = uuid.uuid4().hex[:8]
    sensors = []
    for n in range(6):
        domain = list(Domain)[n % 3]
        key, stored = new_credential()
        sensors.append((f"{domain.value}-{uid}-{n}", domain, key, stored))
    await publish_register(settings, *(registration(s, h, domain=d) for s, d, _, h in sensors))
    config = ingest_settings(settings, sink_batch_max=300)
    sink = SinkWorker(config)
    sink_task = asyncio.create_task(sink.run())
    acknowledged: set[tuple[str, int]] = set()
    base = datetime.now(UTC) - timedelta(hours=1)
    try:
        async with http_ingest(config) as (client, _):
            for batch_number in range(5):
                for sensor_id, domain, key, _ in sensors:
                    readings = [{"seq": batch_number * 20 + n, "metrics": {METRIC[domain]: 0.5},
                                 "observed_at": (base + timedelta(seconds=batch_number * 20 + n)).isoformat()}
                                for n in range(20)]
                    if batch_number == 2:  # one bad reading per batch: a 207 with per-item outcomes
                        readings.append({"seq": 9999, "observed_at": base.isoformat(), "metrics": {"nope": 1.0}})
                    for attempt in range(2 if batch_number == 1 else 1):  # batch 1 is retried: duplicates
                        response = await client.post("/v1/readings", json={"readings": readings},
                                                     headers=bearer(key))
                        assert response.status_code in (200, 207), response.text
                        for outcome in response.json()["outcomes"]:
                            if outcome["status"] == "accepted":
                                acknowledged.add((outcome["sensor_id"], outcome["seq"]))
                    assert response.status_code == (207 if batch_number == 2 else 200)
        producer = make_producer(settings.kafka, "test-poison")
        await producer.start()
        try:  # a poison record on a readings topic must not stop the sink
            await producer.send_and_wait(settings.topic(readings_topic(Domain.TRAFFIC)), b"{garbage",
                                         key=f"traffic-{uid}-0".encode())
        finally:
            await producer.stop()
        keys = await wait_for_rows(settings.database_url, f"%-{uid}-", len(acknowledged))
        assert len(acknowledged) == 6 * 100
        assert set(keys) == acknowledged  # nothing lost, nothing extra
        assert len(keys) == len(set(keys))  # nothing twice
        connection = await asyncpg.connect(settings.database_url)
        try:
            for _ in range(60):
                dead = await connection.fetch("SELECT detail FROM rejections WHERE source = 'sink' AND sensor_id = $1",
                                              f"traffic-{uid}-0")
                if dead:
                    break
                await asyncio.sleep(0.5)
            http_rejections = await connection.fetchval(
                "SELECT count(*) FROM rejections WHERE source = 'http' AND sensor_id LIKE $1", f"%-{uid}-%")
        finally:
            await connection.close()
        assert dead and "readings.traffic.v1" in dead[0]["detail"]
        assert http_rejections == 6
    finally:
        sink.stopping.set()
        await asyncio.wait_for(sink_task, 30)
