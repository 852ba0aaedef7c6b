"""Register fixtures: the app in-process (ASGI or a real uvicorn server), tokens, sensor bodies, topic reads."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn

from schemas.register import SensorRegistration
from schemas.topics import REGISTER_SENSORS
from services.common import jsonwire
from services.common.kafka import make_consumer
from services.common.settings import CommonSettings
from services.register.app import create_app
from services.register.rebuild import read_register
from services.register.settings import RegisterSettings

ADMIN_TOKEN = "test-admin-token-0123456789"
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


def register_settings_from(settings: CommonSettings, **overrides) -> RegisterSettings:
    values = {**settings.model_dump(), "register_admin_token": ADMIN_TOKEN, "register_relay_poll_s": 0.1,
              **overrides}
    return RegisterSettings(**values)


@pytest.fixture
def register_settings(settings: CommonSettings) -> RegisterSettings:
    return register_settings_from(settings)


@pytest.fixture
def organisation() -> str:
    return f"Org {uuid.uuid4().hex[:8]}"


def unique_id(prefix: str = "traffic-test") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def sensor_body(organisation: str, sensor_id: str | None = None, **overrides) -> dict:
    body = {
        "sensor_id": sensor_id or unique_id(),
        "owner_organisation": organisation,
        "owner_contact_name": "Jan Contactpersoon",
        "owner_contact_email": "jan.contact@example.org",
        "domain": "traffic",
        "metrics": [{"name": "intensity", "unit": "veh/h", "min": 0, "max": 10000},
                    {"name": "averageVehicleSpeed", "unit": "km/h", "min": 0, "max": 250}],
        "location": {"type": "Point", "coordinates": [4.8952, 52.3702]},
        "location_description": "Dam square, north side",
        "purpose": "Measure traffic flow to time the traffic lights",
        "legal_ground": "public_task",
        "personal_data": False,
        "retention_days": 365,
        "reporting_interval_s": 60,
        "rate_limit_per_minute": 120,
        "active_until": (datetime.now(UTC) + timedelta(days=365)).isoformat(),
    }
    body.update(overrides)
    return body


class AdjustableClock:
    """The register's clock, movable by tests (e.g. to let active_until pass)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def clock() -> AdjustableClock:
    return AdjustableClock()


@pytest.fixture
async def client(register_settings: RegisterSettings, clock: AdjustableClock) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(register_settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://register") as http:
            http.app = app  # tests reach the context (pool, relay) through it
            yield http


async def wait_for_record(settings: CommonSettings, sensor_id: str,
                          until: Callable[[SensorRegistration | None], bool],
                          deadline_s: float = 20.0) -> dict[str, SensorRegistration]:
    """Re-read the register topic until `until(record)` holds (a bound, not a timing assertion)."""
    topic = settings.topic(REGISTER_SENSORS)
    end = time.monotonic() + deadline_s
    while True:
        register = await read_register(settings.kafka, topic)
        if until(register.get(sensor_id)) or time.monotonic() > end:
            return register
        await asyncio.sleep(0.2)


async def consume_records(settings: CommonSettings, sensor_id: str,
                          until: Callable[[list[dict | None]], bool], deadline_s: float = 20.0) -> list[dict | None]:
    """Consume the register topic from the beginning and return the values (None = tombstone) keyed `sensor_id`,
    in topic order, as soon as `until(values)` holds. Fails when it does not hold within the deadline."""
    consumer = make_consumer(settings.kafka, None, settings.topic(REGISTER_SENSORS))
    await consumer.start()
    values: list[dict | None] = []
    try:
        async with asyncio.timeout(deadline_s):
            while not until(values):
                batches = await consumer.getmany(timeout_ms=500)
                for messages in batches.values():
                    values += [None if m.value is None else jsonwire.loads(m.value) for m in messages
                               if m.key == sensor_id.encode()]
    except TimeoutError:
        seen = [None if v is None else v.get("version") for v in values]
        raise AssertionError(f"register topic never satisfied the wait for {sensor_id}: versions {seen}") from None
    finally:
        await consumer.stop()
    return values


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def live_register(register_settings: RegisterSettings) -> Iterator[str]:
    """The register served by uvicorn on a free port in a background thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(register_settings), host="127.0.0.1", port=port,
                                           log_config=None, access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, name="register-server", daemon=True)
    thread.start()
    end = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > end:
            raise RuntimeError("register server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)
