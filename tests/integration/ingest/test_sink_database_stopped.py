"""PostgreSQL itself stopped for 30 s under load and restarted (an isolated server of the test's own; Kafka is the
shared one): the sink retries while the partitions wait and resumes by itself. After recovery lost = 0 and
duplicates = 0 by set inclusion, and a redelivery of stored rows really happened (so "no duplicates" is proven by
the database absorbing them, not assumed)."""

from __future__ import annotations

import asyncio
import signal
import uuid

import httpx
import pytest

from citystream.devenv import postgres
from services.common.migrate import migrate
from tests.integration.ingest.helpers import kill, start_sink
from tests.integration.ingest.test_accounting import stored_keys, wait_for_rows
from tests.integration.ingest.test_kafka_gate import free_port
from tests.integration.ingest.test_sink_faults import produce_readings, redelivered, retries_seen
from tests.support.infra import Infrastructure
from tests.support.isolated_runtime import isolated_runtime, require_local_runtime

OUTAGE_S = 30.0


@pytest.fixture
def isolated_postgres(infrastructure: Infrastructure):
    require_local_runtime(infrastructure)
    with isolated_runtime("ingest-db-stopped-") as runtime:
        postgres.start(runtime)
        asyncio.run(migrate(runtime.database_url))
        yield runtime


async def test_postgres_stopped_30_s_under_load_then_restarted_loses_nothing_and_stores_once(
        settings, isolated_postgres, tmp_path):
    database_url = isolated_postgres.database_url
    uid = uuid.uuid4().hex[:8]
    port, log_path = free_port(), tmp_path / "sink.log"
    sink = start_sink(settings, database_url, port, log_path)
    try:
        sent = await produce_readings(settings, uid, range(0, 1000))
        before = await wait_for_rows(database_url, f"traffic-{uid}-", len(sent))
        assert set(before) == sent, log_path.read_text()[-3000:]

        await asyncio.to_thread(postgres.stop, isolated_postgres)  # the server itself goes down
        loop = asyncio.get_running_loop()
        back_at = loop.time() + OUTAGE_S
        # Stored rows delivered again, as after a crash between the database commit and the offset commit.
        resent = await produce_readings(settings, uid, range(0, 1000))
        seq = 1000
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            while loop.time() < back_at:  # load for the whole outage
                sent |= await produce_readings(settings, uid, range(seq, seq + 100))
                seq += 100
                await asyncio.sleep(1.0)
            assert await retries_seen(client) >= 2, log_path.read_text()[-3000:]
            readiness = await client.get("/readyz")
            assert readiness.status_code == 503 and readiness.json()["checks"]["database"] == {"ok": False, "detail": "unavailable"}

            await asyncio.to_thread(postgres.start, isolated_postgres)
            keys = await wait_for_rows(database_url, f"traffic-{uid}-", len(sent), timeout_s=60)
            assert await redelivered(client) >= len(resent)  # the stored rows were offered again, none inserted
        assert set(keys) == sent, log_path.read_text()[-3000:]  # lost = 0
        assert len(keys) == len(set(keys)) == len(await stored_keys(database_url, f"traffic-{uid}-"))  # dups = 0
    finally:
        kill(sink, signal.SIGTERM)
