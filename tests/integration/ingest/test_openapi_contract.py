"""Ingest's OpenAPI is a contract a client can rely on: schemathesis drives `python -m services.ingest http` (real
Kafka) with bodies generated from the document — valid batches, a declared sensor's readings, wrong credentials,
and negative (schema-violating) bodies — and every answer must have a documented status, content type and body."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.ingest.helpers import publish_register
from tests.integration.ingest.test_kafka_gate import free_port
from tests.support.ingest_factories import new_credential, registration

REPO = Path(__file__).resolve().parents[3]
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]


def _start(settings, port: int, log_path: Path) -> subprocess.Popen:
    env = os.environ | {
        "CITYSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "CITYSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "CITYSTREAM_INGEST_HTTP_PORT": str(port), "CITYSTREAM_INGEST_MAX_BATCH_READINGS": "20",
        "CITYSTREAM_LOG_LEVEL": "WARNING",
    }
    with log_path.open("wb") as log_file:
        server = subprocess.Popen([sys.executable, "-m", "services.ingest", "http"], cwd=REPO, env=env,
                                  stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert server.poll() is None, log_path.read_text()[-2000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    os.killpg(server.pid, signal.SIGKILL)
    raise AssertionError("ingest did not become ready: " + log_path.read_text()[-2000:])


def _aimed_at(body, sensor_id: str) -> object:
    """A third of the generated batches name the declared sensor, with a fresh timestamp and a declared metric,
    so admission is exercised, not only the refusal paths."""
    if isinstance(body, dict) and isinstance(body.get("readings"), list):
        for index, item in enumerate(body["readings"]):
            if isinstance(item, dict):
                item["sensor_id"] = sensor_id
                item["observed_at"] = (datetime.now(UTC) - timedelta(seconds=index + 1)).isoformat()
                item["metrics"] = {"intensity": float(index)}
    return body


def test_every_answer_matches_the_documented_contract(settings, tmp_path):
    key, stored = new_credential()
    sensor_id = f"traffic-{uuid.uuid4().hex[:8]}-contract"
    asyncio.run(publish_register(settings, registration(sensor_id, stored, rate_limit_per_minute=100_000)))
    port = free_port()
    server = _start(settings, port, tmp_path / "ingest.log")
    statuses: list[int] = []
    try:
        schema = schemathesis.openapi.from_url(f"http://127.0.0.1:{port}/openapi.json")
        operation = next(result.ok() for result in schema.get_all_operations()
                         if result.ok().path == "/v1/readings")
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            @hypothesis_settings(max_examples=30, deadline=None, database=None, derandomize=True,
                                 suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case):
                turn = len(statuses) % 3
                if turn == 0:
                    case.body = _aimed_at(case.body, sensor_id)
                headers = {"Authorization": f"Bearer {key}"} if turn < 2 else {"Authorization": "Bearer k0.wrong"}
                response = case.call_and_validate(headers=headers, checks=CHECKS, timeout=20)
                statuses.append(response.status_code)

            check()
        # Request-level refusals the generator rarely produces: each is documented too. With the sensor's
        # credential: a request without one is answered 401 before its body is looked at.
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for content in (b"not json", b'{"readings": []}', b'{"readings": [' + b"{}," * 30 + b"{}]}"):
                response = client.post("/v1/readings", content=content,
                                       headers={"content-type": "application/json", "Authorization": f"Bearer {key}"})
                operation.validate_response(response)
                statuses.append(response.status_code)
        for path in ("/healthz", "/readyz", "/metrics"):  # the operations endpoints are documented as well
            ops = next(result.ok() for result in schema.get_all_operations() if result.ok().path == path)
            response = ops.Case().call_and_validate(checks=CHECKS, timeout=20)
            statuses.append(response.status_code)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    assert "Traceback" not in (tmp_path / "ingest.log").read_text()
    # The run reached admission and the main refusal paths, not one status over and over.
    assert {200, 400, 401, 413} <= set(statuses), sorted(set(statuses))
    assert set(statuses) & {404, 422}, sorted(set(statuses))
