"""`python -m services.ingest http` as a real process behind uvicorn: ready, admits, refuses a chunked oversize body."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from tests.integration.ingest.helpers import bearer, publish_register
from tests.integration.ingest.test_kafka_gate import free_port
from tests.support.ingest_factories import new_credential, reading, registration

REPO = Path(__file__).resolve().parents[3]


async def test_http_entrypoint_serves_readings_and_limits_chunked_bodies(settings, tmp_path):
    key, stored = new_credential()
    await publish_register(settings, registration(f"traffic-{uuid.uuid4().hex[:8]}-proc", stored))
    port = free_port()
    env = os.environ | {
        "CITYSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "CITYSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "CITYSTREAM_INGEST_HTTP_PORT": str(port), "CITYSTREAM_INGEST_MAX_BODY_BYTES": "65536",
    }
    log_path = tmp_path / "http.log"
    with log_path.open("wb") as log_file:
        server = subprocess.Popen([sys.executable, "-m", "services.ingest", "http"], cwd=REPO, env=env,
                                  stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            ready = None
            for _ in range(60):
                try:
                    ready = await client.get("/readyz")
                    if ready.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.5)
            assert ready is not None and ready.status_code == 200, log_path.read_text()[-2000:]
            checks = ready.json()["checks"]  # the readiness contract (services/common/readiness.py)
            assert ready.json()["status"] == "ready" and checks["kafka"] == {"ok": True, "detail": "answering"}
            assert checks["register"]["ok"] and checks["register"]["detail"].endswith(" sensors")
            accepted = await client.post("/v1/readings", json={"readings": [reading(1)]}, headers=bearer(key))
            assert accepted.status_code == 200 and accepted.json()["accepted"] == 1

            async def chunks():
                for _ in range(200):
                    yield b" " * 1024

            refused = await client.post("/v1/readings", content=chunks(), headers=bearer(key))
            assert (refused.status_code, refused.json()["reason"]) == (413, "PAYLOAD_TOO_LARGE")
            metrics = (await client.get("/metrics")).text
            assert 'citystream_ingest_readings_total{domain="traffic",outcome="admitted",path="http",reason=""} 1.0' \
                in metrics
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal: -SIGTERM is a clean stop.
        assert server.wait(timeout=30) in (0, -signal.SIGTERM)
    log_text = log_path.read_text()
    assert "Traceback" not in log_text and "Unclosed" not in log_text, log_text[-2000:]
