"""The sink on the real broker and TimescaleDB: rows the database refuses go to the rejected topic (and from there
into `rejections`) while the rest of the batch is stored; readiness means database reachable + consumer joined."""

from __future__ import annotations

import asyncio
import signal
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from schemas.common import Domain
from schemas.topics import REJECTED_READINGS, readings_topic
from services.common import jsonwire
from services.common.kafka import make_producer
from services.ingest.sink_worker import SinkWorker
from tests.integration.ingest.helpers import drain, ingest_settings, kill, start_sink
from tests.integration.ingest.test_accounting import stored_keys, wait_for_rows
from tests.integration.ingest.test_kafka_gate import free_port
from tests.support.tcp_proxy import TcpProxy


def traffic_reading(sensor: str, seq: int, **metrics) -> dict:
    observed = datetime.now(UTC) - timedelta(minutes=10) + timedelta(seconds=seq)
    return {"sensor_id": sensor, "seq": seq, "observed_at": observed.isoformat(),
            "received_at": observed.isoformat(), "register_version": 1, "domain": "traffic",
            "metrics": metrics or {"intensity": 1.0}}


async def produce(settings, readings: list[dict]) -> None:
    producer = make_producer(settings.kafka, "test-sink-refused", linger_ms=50)
    await producer.start()
    try:
        pending = [await producer.send(settings.topic(readings_topic(Domain.TRAFFIC)), jsonwire.dumps(value),
                                       key=value["sensor_id"].encode()) for value in readings]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def sink_rejections(database_url: str, sensor: str, timeout_s: float = 60) -> list:
    connection = await asyncpg.connect(database_url)
    try:
        for _ in range(int(timeout_s * 2)):
            rows = await connection.fetch("SELECT reason, detail, payload FROM rejections "
                                          "WHERE source = 'sink' AND sensor_id = $1", sensor)
            if rows:
                return rows
            await asyncio.sleep(0.5)
        return []
    finally:
        await connection.close()


async def test_a_row_the_database_refuses_is_dead_lettered_and_the_rest_is_stored(settings):
    uid = uuid.uuid4().hex[:8]
    good, bad = f"traffic-{uid}-good", f"traffic-{uid}-bad"
    # jsonb refuses \u0000 (SQLSTATE 22P05): the record is valid JSON, the sink's row check passes, the database not.
    batch = [traffic_reading(good, seq) for seq in range(40)]
    batch.insert(17, traffic_reading(bad, 1, intensity=2.0, note="a\u0000b"))
    await produce(settings, batch)
    sink = SinkWorker(ingest_settings(settings, sink_batch_max=500))
    task = asyncio.create_task(sink.run())
    try:
        keys = await wait_for_rows(settings.database_url, f"traffic-{uid}-good", 40)
        assert set(keys) == {(good, seq) for seq in range(40)}
        refused = await sink_rejections(settings.database_url, bad)
        assert len(refused) == 1, refused
        assert refused[0]["reason"] == "MALFORMED"
        assert "database refused the row" in refused[0]["detail"] and "readings.traffic.v1" in refused[0]["detail"]
        assert "\\u0000" in jsonwire.loads(refused[0]["payload"])  # the offending payload travels with it
        assert await stored_keys(settings.database_url, bad) == []
        dead_letters = [record for record in await drain(settings, REJECTED_READINGS) if record.key == bad.encode()]
        assert len(dead_letters) == 1  # on the rejected topic, once
        await produce(settings, [traffic_reading(good, 40)])  # the partition did not stall behind the bad row
        assert len(await wait_for_rows(settings.database_url, f"traffic-{uid}-good", 41)) == 41
    finally:
        sink.stopping.set()
        await asyncio.wait_for(task, 30)


async def test_sink_is_ready_before_any_write_and_follows_the_database(settings, tmp_path):
    target = urlsplit(settings.database_url)
    proxy = TcpProxy(target.hostname, target.port)
    await proxy.start()
    proxied_url = urlunsplit(target._replace(netloc=f"{target.username}:{target.password}@127.0.0.1:{proxy.port}"))
    port, log_path = free_port(), tmp_path / "sink.log"
    sink = start_sink(settings, proxied_url, port, log_path, CITYSTREAM_INGEST_SINK_DB_PROBE_S="1")

    async def readiness_becomes(client: httpx.AsyncClient, status: int) -> httpx.Response | None:
        answer = None
        for _ in range(120):
            try:
                answer = await client.get("/readyz")
                if answer.status_code == status:
                    return answer
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.5)
        return answer

    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            ready = await readiness_becomes(client, 200)  # nothing was ever written: the topics are empty
            assert ready is not None and ready.status_code == 200, log_path.read_text()[-3000:]
            assert ready.json() == {"status": "ready", "checks": {"database": {"ok": True, "detail": "answering"},
                                                                  "consumer": {"ok": True, "detail": "joined"}}}
            await proxy.stop()
            down = await readiness_becomes(client, 503)  # found by the periodic probe, without any write
            assert down is not None and down.status_code == 503
            assert down.json() == {"status": "not_ready", "checks": {"database": {"ok": False, "detail": "unavailable"},
                                                                 "consumer": {"ok": True, "detail": "joined"}}}
            await proxy.start()
            back = await readiness_becomes(client, 200)
            assert back is not None and back.json()["status"] == "ready"
    finally:
        kill(sink, signal.SIGTERM)
        await proxy.stop()
