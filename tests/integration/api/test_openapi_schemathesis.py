"""Property-based run of the OpenAPI document against `python -m services.api` (real Kafka and TimescaleDB):
no server error, every response matches its documented schema, status and content type. Also: the entrypoint
starts from env vars only and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import httpx
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_schema_conformance, status_code_conformance,
)

from tests.integration.api.support import TOKENS, alert_event, free_port, insert_alert_events, reader_url

# The SSE stream never ends by design; it is covered by tests/integration/api/test_live.py.
ENDLESS = {"/v1/live/alerts"}
# Random ids only ever reach the 404 path: every other generated case of these operations names a real alert.
SEEDED = {"/v1/alerts/{alert_id}", "/v1/alerts/{alert_id}/actions"}
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]


def start_api(settings, port: int) -> subprocess.Popen:
    env = {**os.environ, "CITYSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
           "CITYSTREAM_DATABASE_URL": settings.database_url, "CITYSTREAM_TOPIC_PREFIX": settings.topic_prefix,
           "CITYSTREAM_API_DATABASE_URL": reader_url(settings.database_url), "CITYSTREAM_API_PORT": str(port),
           "CITYSTREAM_API_TOKENS": TOKENS, "CITYSTREAM_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([sys.executable, "-m", "services.api"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError("API did not become ready: " + process.stdout.read())


def test_openapi_contract_holds_under_generated_requests(settings):
    import asyncio

    seeded = alert_event("traffic-schemathesis-01", occurred_at=datetime.now(UTC))
    asyncio.run(insert_alert_events(settings.database_url, [seeded]))
    port = free_port()
    process = start_api(settings, port)
    try:
        schema = schemathesis.openapi.from_url(f"http://127.0.0.1:{port}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        tested, calls, by_operation = [], [], {}
        for operation in operations:
            if operation.path in ENDLESS:
                continue
            statuses = by_operation.setdefault(f"{operation.method.upper()} {operation.path}", [])

            @hypothesis_settings(max_examples=12, deadline=None, database=None, derandomize=True,
                                 suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy())
            def check(case):
                if case.operation.path in SEEDED and len(statuses) % 2 == 0:
                    case.path_parameters = {**(case.path_parameters or {}), "alert_id": seeded.alert_id}
                response = case.call_and_validate(headers={"Authorization": "Bearer t-admin"}, checks=CHECKS,
                                                  timeout=20)
                calls.append(response.status_code)
                statuses.append(response.status_code)

            check()
            tested.append(f"{operation.method.upper()} {operation.path}")
        assert len(tested) >= 9, tested
        assert len(calls) >= 5 * len(tested) and 200 in calls and 422 in calls, calls
        # The success paths of the seeded operations were fuzzed too, not only their 404.
        assert 202 in by_operation["POST /v1/alerts/{alert_id}/actions"], by_operation
        assert 200 in by_operation["GET /v1/alerts/{alert_id}"], by_operation
        assert 200 in by_operation["GET /v1/audit/operator-actions"], by_operation
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    # uvicorn shuts down gracefully, then re-raises the signal it caught, so -SIGTERM is the clean exit status.
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Traceback" not in output, output
