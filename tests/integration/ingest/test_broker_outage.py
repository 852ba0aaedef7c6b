"""The broker stopped mid-load and restarted, on an isolated Kafka of the test's own (the shared one stays up).

HTTP ingest and sink run as real processes. M sensors keep posting; while the broker is down they get 503 with
Retry-After and retry the same readings until a 2xx. After recovery the set of (sensor_id, seq) that got a 2xx
equals the set stored in `readings`: lost = 0, duplicates = 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from citystream.devenv import kafka
from services.common.kafka import create_topics
from services.ingest.settings import IngestSettings
from tests.integration.ingest.conftest import ANSWER_BOUND_S
from tests.integration.ingest.helpers import REPO, bearer, kill, publish_register, start_sink
from tests.integration.ingest.test_accounting import wait_for_rows
from tests.integration.ingest.test_kafka_gate import free_port
from tests.support.ingest_factories import new_credential, registration
from tests.support.isolated_runtime import kafka_settings

SENSORS = 4
BATCHES_PER_SENSOR = 60
READINGS_PER_BATCH = 20

class Client:
    """One sensor posting its batches in order; a batch is re-sent (same seqs) until it gets a 2xx."""

    def __init__(self, http: httpx.AsyncClient, sensor_id: str, credential: str) -> None:
        self.http, self.sensor_id, self.credential = http, sensor_id, credential
        self.acknowledged: set[tuple[str, int]] = set()
        self.unavailable: list[str | None] = []  # Retry-After of every 503 seen
        self.slowest_s = 0.0  # the longest any answer took

    async def run(self, base: datetime) -> None:
        for batch in range(BATCHES_PER_SENSOR):
            seqs = range(batch * READINGS_PER_BATCH, (batch + 1) * READINGS_PER_BATCH)
            readings = [{"seq": seq, "observed_at": (base + timedelta(seconds=seq)).isoformat(),
                         "metrics": {"intensity": float(seq % 90)}} for seq in seqs]
            await self._send_until_acknowledged(readings)
            await asyncio.sleep(0.05)

    async def _send_until_acknowledged(self, readings: list[dict]) -> None:
        for _ in range(300):
            # No retry on a transport error: the ingest process stays up throughout, and a 503 that arrives only
            # after the client's timeout (ANSWER_BOUND_S) is a failure, not something to try again.
            started = time.monotonic()
            response = await self.http.post("/v1/readings", json={"readings": readings},
                                            headers=bearer(self.credential))
            self.slowest_s = max(self.slowest_s, time.monotonic() - started)
            if response.status_code == 503:
                self.unavailable.append(response.headers.get("retry-after"))
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                continue
            assert response.status_code == 200, response.text
            self.acknowledged |= {(o["sensor_id"], o["seq"]) for o in response.json()["outcomes"]
                                  if o["status"] == "accepted"}
            return
        raise AssertionError(f"{self.sensor_id}: no 2xx after 300 attempts")


async def wait_ready(url: str, process: subprocess.Popen, log_path: Path) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        for _ in range(120):
            assert process.poll() is None, log_path.read_text()[-3000:]
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.5)
    raise AssertionError(f"{url} not ready:\n{log_path.read_text()[-3000:]}")


async def test_broker_stopped_mid_load_and_restarted_loses_nothing(isolated_kafka, database_url, topic_prefix,
                                                                    tmp_path):
    broker = isolated_kafka
    settings = IngestSettings(**kafka_settings(broker), database_url=database_url,
                              topic_prefix=topic_prefix)
    await create_topics(settings.kafka, prefix=topic_prefix)
    uid = uuid.uuid4().hex[:8]
    sensors = [(f"traffic-{uid}-{n}", *new_credential()) for n in range(SENSORS)]
    await publish_register(settings, *(registration(sensor, stored) for sensor, _, stored in sensors))

    http_port, sink_port = free_port(), free_port()
    http_log, sink_log = tmp_path / "http.log", tmp_path / "sink.log"
    env = os.environ | {
        **settings.kafka.environment(), "CITYSTREAM_TOPIC_PREFIX": topic_prefix,
        "CITYSTREAM_DATABASE_URL": database_url, "CITYSTREAM_INGEST_HTTP_PORT": str(http_port),
        "CITYSTREAM_INGEST_RETRY_AFTER_S": "1",
    }
    with http_log.open("wb") as log_file:
        http = subprocess.Popen([sys.executable, "-m", "services.ingest", "http"], cwd=REPO, env=env,
                                stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    sink = start_sink(settings, database_url, sink_port, sink_log)
    try:
        await wait_ready(f"http://127.0.0.1:{http_port}", http, http_log)
        await wait_ready(f"http://127.0.0.1:{sink_port}", sink, sink_log)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=ANSWER_BOUND_S) as client:
            clients = [Client(client, sensor, credential) for sensor, credential, _ in sensors]
            base = datetime.now(UTC) - timedelta(hours=1)
            load = asyncio.gather(*(c.run(base) for c in clients))
            while sum(len(c.acknowledged) for c in clients) < SENSORS * 5 * READINGS_PER_BATCH:
                assert not load.done(), "load ended before the broker was stopped"
                await asyncio.sleep(0.2)
            await asyncio.to_thread(kafka.stop, broker)  # mid-load
            for _ in range(120):  # every sensor keeps trying; wait until they were refused a few times
                if sum(len(c.unavailable) for c in clients) >= 2 * SENSORS:
                    break
                await asyncio.sleep(0.5)
            acknowledged_while_down = sum(len(c.acknowledged) for c in clients)
            await asyncio.to_thread(kafka.start, broker)
            await asyncio.wait_for(load, 240)
        unavailable = [retry_after for c in clients for retry_after in c.unavailable]
        assert len(unavailable) >= 2 * SENSORS and set(unavailable) == {"1"}  # 503 always with Retry-After
        assert max(c.slowest_s for c in clients) < ANSWER_BOUND_S  # every answer, 503s included, came in time
        acknowledged = set().union(*(c.acknowledged for c in clients))
        assert len(acknowledged) == SENSORS * BATCHES_PER_SENSOR * READINGS_PER_BATCH
        assert acknowledged_while_down < len(acknowledged)  # the outage really was mid-load
        keys = await wait_for_rows(database_url, f"traffic-{uid}-", len(acknowledged), timeout_s=120)
        assert set(keys) == acknowledged, sink_log.read_text()[-3000:]  # lost = 0, nothing extra
        duplicates = [key for key, count in Counter(keys).items() if count > 1]
        assert duplicates == []
    finally:
        kill(http, signal.SIGTERM)
        kill(sink, signal.SIGTERM)

