"""Helpers for the API's integration tests: a real uvicorn server, rows in the real tables, events on real topics."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import uvicorn

from schemas.alerts import AlertEvent, Explanation
from schemas.headers import make_headers
from schemas.register import MetricDeclaration, SensorRegistration
from schemas.topics import ALERTS, REGISTER_SENSORS
from services.api.app import create_app
from services.api.settings import ApiSettings
from services.common import jsonwire
from services.common.kafka import make_producer

TOKENS = "t-viewer:viewer,t-operator:operator:ops-anna,t-admin:admin"
VIEWER = {"Authorization": "Bearer t-viewer"}
OPERATOR = {"Authorization": "Bearer t-operator"}


def reader_url(database_url: str) -> str:
    """The same database, reached as the API's read-only role (created by migration 0400)."""
    scheme, _, rest = database_url.partition("://")
    return f"{scheme}://citystream_reader:citystream_reader@{rest.partition('@')[2]}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.asynccontextmanager
async def running_api(settings, wait_ready: bool = True, **overrides):
    """Serve the API on a free port in this event loop; yields (base_url, app) once /readyz says ready
    (or, with `wait_ready=False`, once it answers /healthz)."""
    api_settings = ApiSettings(**{**settings.model_dump(), "api_tokens": TOKENS,
                                  "api_database_url": reader_url(settings.database_url), "api_port": free_port(),
                                  **overrides})
    app = create_app(api_settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=api_settings.api_port, log_config=None,
                                           lifespan="on", ws="websockets-sansio",
                                           timeout_graceful_shutdown=2))
    task = asyncio.create_task(server.serve())
    base_url = f"http://127.0.0.1:{api_settings.api_port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
            for _ in range(200):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/readyz" if wait_ready else "/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("API did not become ready")
        yield base_url, app
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


def evolve(event: AlertEvent, **changes) -> AlertEvent:
    """The next event of the same alert, validated like any event on the wire."""
    return AlertEvent.model_validate({**event.model_dump(), **changes})


def unique_sensor(domain: str = "traffic") -> str:
    return f"{domain}-t{uuid.uuid4().hex[:10]}"


def alert_event(sensor_id: str, *, alert_id: str | None = None, event_type: str = "opened", status: str = "open",
                severity: str = "high", domain: str = "traffic", kind: str = "congestion",
                occurred_at: datetime | None = None, contributing=(), actor: str | None = None,
                summary: str = "speed 12 km/h is 75% below the usual 48 km/h with occupancy 62%",
                detector: str = "traffic.congestion", metric: str = "averageVehicleSpeed") -> AlertEvent:
    occurred_at = occurred_at or datetime.now(UTC)
    alert_id = alert_id or f"a-{sensor_id}-{kind}-{uuid.uuid4().hex[:6]}"
    return AlertEvent(
        event_id=f"{alert_id}-{event_type}-{uuid.uuid4().hex[:6]}", alert_id=alert_id, event_type=event_type,
        sensor_id=sensor_id, domain=domain, kind=kind, severity=severity, status=status,
        opened_at=occurred_at - timedelta(minutes=1), occurred_at=occurred_at, actor=actor,
        explanation=Explanation(detector=detector, detector_version="1.0.0", metric=metric,
                                observed=1900.0, expected=800.0, score=4.2, threshold=3.0, summary=summary,
                                contributing=tuple(contributing)))


async def insert_alert_events(database_url: str, events: list[AlertEvent]) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await connection.executemany(
            "INSERT INTO alert_events (occurred_at, event_id, alert_id, event_type, sensor_id, domain, kind, severity,"
            " status, opened_at, explanation, actor, assignee, comment, resolved_at)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11::jsonb,$12,$13,$14,$15)",
            [(e.occurred_at, e.event_id, e.alert_id, str(e.event_type), e.sensor_id, str(e.domain), str(e.kind),
              str(e.severity), str(e.status), e.opened_at, e.explanation.model_dump_json(), e.actor, e.assignee,
              e.comment, e.resolved_at) for e in events])
    finally:
        await connection.close()


async def insert_readings(database_url: str, sensor_id: str, domain: str, rows: list[tuple[int, datetime, dict]]):
    connection = await asyncpg.connect(database_url)
    try:
        await connection.executemany(
            "INSERT INTO readings (observed_at, sensor_id, seq, domain, received_at, register_version, metrics)"
            " VALUES ($1, $2, $3, $4, $1, 1, $5::jsonb)",
            [(at, sensor_id, seq, domain, jsonwire.dumps(metrics).decode()) for seq, at, metrics in rows])
    finally:
        await connection.close()


async def produce(settings, topic: str, records: list[tuple[str, bytes | None]], schema: str) -> None:
    producer = make_producer(settings.kafka, "test-producer", linger_ms=0)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(settings.topic(topic), value, key=key.encode(),
                                         headers=make_headers(schema, "test"))
    finally:
        await producer.stop()


async def produce_alerts(settings, events: list[AlertEvent]) -> None:
    await produce(settings, ALERTS, [(e.sensor_id, jsonwire.dumps(e)) for e in events], ALERTS)


def registration(sensor_id: str, domain: str, location, interval_s: float = 60.0) -> SensorRegistration:
    metric = {"traffic": "intensity", "energy": "activePower", "waste": "fillingLevel"}[domain]
    return SensorRegistration(
        sensor_id=sensor_id, version=1, status="active", domain=domain, owner_organisation="Gemeente Amsterdam",
        metrics=(MetricDeclaration(name=metric, unit="x", min=0, max=10_000),), rate_limit_per_minute=60,
        reporting_interval_s=interval_s, updated_at=datetime.now(UTC), location=location)


async def register_sensors(settings, records: list[SensorRegistration]) -> None:
    await produce(settings, REGISTER_SENSORS, [(r.sensor_id, jsonwire.dumps(r)) for r in records], REGISTER_SENSORS)
