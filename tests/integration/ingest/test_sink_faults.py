"""Sink faults on the real broker and TimescaleDB: killed mid-batch and restarted, then the database unreachable
for 30 s (through a stoppable proxy, the shared server stays up) while load keeps arriving.

After recovery: lost = 0 and duplicates = 0, by set inclusion. (The broker outage is in test_broker_outage.py.)
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import httpx

from schemas.common import Domain
from schemas.topics import readings_topic
from services.common import jsonwire
from services.common.kafka import make_producer
from tests.integration.ingest.helpers import kill, start_sink
from tests.integration.ingest.test_accounting import stored_keys, wait_for_rows
from tests.integration.ingest.test_kafka_gate import free_port
from tests.support.tcp_proxy import TcpProxy

DATABASE_OUTAGE_S = 30.0


BASE = datetime.now(UTC) - timedelta(hours=2)  # one clock for every test's readings: a re-send is identical


async def produce_readings(settings, uid: str, seqs) -> set[tuple[str, int]]:
    """Readings as the gate writes them; producing the same seqs again re-sends identical records (a redelivery)."""
    producer = make_producer(settings.kafka, "test-sink-load")
    await producer.start()
    sent, pending = set(), []
    base = BASE
    try:
        for seq in seqs:
            sensor = f"traffic-{uid}-{seq % 5}"
            value = {"sensor_id": sensor, "seq": seq, "observed_at": (base + timedelta(seconds=seq)).isoformat(),
                     "received_at": base.isoformat(), "register_version": 1, "domain": "traffic",
                     "metrics": {"intensity": float(seq % 50)}}
            pending.append(await producer.send(settings.topic(readings_topic(Domain.TRAFFIC)),
                                               jsonwire.dumps(value), key=sensor.encode()))
            sent.add((sensor, seq))
        await asyncio.gather(*pending)  # acknowledged: from here on the sink must not lose them
    finally:
        await producer.stop()
    return sent


async def metric(client: httpx.AsyncClient, sample: str) -> float:
    text = (await client.get("/metrics")).text
    lines = [line for line in text.splitlines() if line.startswith(sample + " ")]
    return float(lines[0].split()[-1]) if lines else 0.0


async def retries_seen(client: httpx.AsyncClient) -> float:
    return await metric(client, "citystream_ingest_sink_retries_total")


async def redelivered(client: httpx.AsyncClient) -> float:
    """Rows this sink process offered to the database that were already there (offered minus newly inserted)."""
    return (await metric(client, 'citystream_ingest_sink_rows_total{table="readings"}')
            - await metric(client, 'citystream_ingest_sink_rows_inserted_total{table="readings"}'))


async def test_sink_killed_mid_batch_and_database_down_loses_nothing_and_stores_once(settings, tmp_path):
    uid = uuid.uuid4().hex[:8]
    target = urlsplit(settings.database_url)
    proxy = TcpProxy(target.hostname, target.port)
    await proxy.start()
    proxied_url = urlunsplit(target._replace(netloc=f"{target.username}:{target.password}@127.0.0.1:{proxy.port}"))
    port, log_path = free_port(), tmp_path / "sink.log"
    sink = start_sink(settings, proxied_url, port, log_path)
    try:
        sent = await produce_readings(settings, uid, range(0, 3000))
        await wait_for_rows(settings.database_url, f"traffic-{uid}-", 400)
        kill(sink, signal.SIGKILL)  # mid-stream, most likely mid-batch: no clean shutdown, no offset commit
        partial = await stored_keys(settings.database_url, f"traffic-{uid}-")
        assert len(partial) >= 400

        await proxy.stop()  # the database becomes unreachable for the sink
        loop = asyncio.get_running_loop()
        back_at = loop.time() + DATABASE_OUTAGE_S
        sink = start_sink(settings, proxied_url, port, log_path)

        async def load_during_outage() -> set[tuple[str, int]]:
            more, seq = set(), 3000
            while loop.time() < back_at:
                more |= await produce_readings(settings, uid, range(seq, seq + 100))
                seq += 100
                await asyncio.sleep(1.0)
            return more

        load = asyncio.create_task(load_during_outage())
        # Records the sink already stored, delivered again (as after a crash between the database commit and the
        # offset commit): the duplicate checks below then prove idempotence instead of assuming it.
        resent = await produce_readings(settings, uid, sorted(seq for _, seq in partial))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(60):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.5)
            # The restarted sink gets its partitions once the killed member's session expired, then fails to
            # write: wait until it has retried at least twice.
            for _ in range(120):
                if await retries_seen(client) >= 2:
                    break
                await asyncio.sleep(0.5)
            assert await retries_seen(client) >= 2, log_path.read_text()[-3000:]
            readiness = await client.get("/readyz")
            assert readiness.status_code == 503 and readiness.json()["checks"]["database"] == {"ok": False, "detail": "unavailable"}
            sent |= await load  # the load went on for the whole outage
            assert await stored_keys(settings.database_url, f"traffic-{uid}-") == partial
            await proxy.start()  # the database is back; the sink resumes by itself
            keys = await wait_for_rows(settings.database_url, f"traffic-{uid}-", len(sent), timeout_s=90)
            # A redelivery really happened: the restarted sink was offered stored rows again and inserted none.
            assert await redelivered(client) >= len(resent)
        assert set(keys) == sent, log_path.read_text()[-3000:]  # lost = 0
        assert len(keys) == len(set(keys))  # duplicates = 0
    finally:
        kill(sink, signal.SIGTERM)
        await proxy.stop()
