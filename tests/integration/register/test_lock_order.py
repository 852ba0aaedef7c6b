"""The register's transactions that lock many sensor rows lock them in one order (repository.LOCK_IN_SENSOR_ORDER),
so they wait for each other instead of deadlocking. Before, the outbox relay stamped sensors in join order, and a
gateway credential issued for the same sensors meanwhile could be PostgreSQL's deadlock victim: an HTTP 500.

The test arranges the interleaving that deadlocked, on the real database and broker: an outside transaction holds the
middle sensor, the gateway request locks the sensors before it and waits, the relay pass starts stamping all of them
and waits too; then the outside transaction ends and both must finish."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx

from schemas.topics import REGISTER_SENSORS
from services.common.db import close_pool, create_pool
from services.common.kafka import make_producer
from services.register.app import create_app
from services.register.relay import OutboxRelay
from tests.integration.register.conftest import ADMIN, register_settings_from, sensor_body, unique_id

SENSORS = 60


async def _lock_waiters(pool: asyncpg.Pool, at_least: int, deadline_s: float = 20.0) -> None:
    """Until `at_least` sessions of this database wait on a lock (a bound, not a timing assertion)."""
    end = time.monotonic() + deadline_s
    while True:
        waiting = await pool.fetchval("SELECT count(*) FROM pg_stat_activity"
                                      " WHERE datname = current_database() AND wait_event_type = 'Lock'")
        if waiting >= at_least:
            return
        assert time.monotonic() < end, f"{waiting} session(s) waiting on a lock, expected {at_least}"
        await asyncio.sleep(0.05)


async def test_a_gateway_credential_and_the_relay_pass_over_the_same_sensors_wait_for_each_other_and_both_succeed(
        settings, organisation):
    app = create_app(register_settings_from(settings, register_relay_enabled=False))  # this test runs the relay
    sensor_ids = sorted(unique_id("lock-order") for _ in range(SENSORS))
    pool = await create_pool(settings.database_url)
    producer = make_producer(settings.kafka, "register-lock-order", linger_ms=0)
    await producer.start()
    holder = await asyncpg.connect(settings.database_url)
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://register") as client:
            # Declared in reverse order: the relay's rows come in the opposite order to the gateway's locks.
            for sensor_id in reversed(sensor_ids):
                response = await client.post("/v1/sensors", json=sensor_body(organisation, sensor_id), headers=ADMIN)
                assert response.status_code == 201, response.text
            relay = OutboxRelay(pool, producer, settings.topic(REGISTER_SENSORS), "register/lock-order")

            outside = holder.transaction()
            await outside.start()
            await holder.execute("SELECT 1 FROM register_sensors WHERE sensor_id = $1 FOR UPDATE",
                                 sensor_ids[SENSORS // 2])
            gateway = asyncio.create_task(
                client.post("/v1/gateway-credentials", json={"sensor_ids": sensor_ids}, headers=ADMIN))
            await _lock_waiters(pool, 1)  # the gateway holds the first half and waits for the middle sensor
            relay_pass = asyncio.create_task(relay.publish_pending())
            await _lock_waiters(pool, 2)  # the relay has sent the declarations and waits to stamp them
            await outside.rollback()

            response = await asyncio.wait_for(gateway, 30)
            published = await asyncio.wait_for(relay_pass, 30)  # raises DeadlockDetectedError if it was the victim
            assert response.status_code == 201, response.text
            assert response.json()["sensor_ids"] == sensor_ids
            assert published >= SENSORS
            stamped = await pool.fetchval("SELECT count(*) FROM register_sensors"
                                          " WHERE sensor_id = ANY($1::text[]) AND published_version >= 1", sensor_ids)
            assert stamped == SENSORS
    finally:
        await holder.close()
        await producer.stop()
        await close_pool(pool)
