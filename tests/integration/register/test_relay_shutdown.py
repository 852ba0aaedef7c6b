"""Stopping the outbox relay on the real database and broker: the pass in progress finishes, a stuck one is cut
short within a bound, and nothing committed is lost either way."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx
import pytest

from schemas.topics import REGISTER_SENSORS
from services.common.db import close_pool, create_pool
from services.common.kafka import make_producer
from services.register.app import create_app
from services.register.relay import OutboxRelay
from tests.integration.register.conftest import ADMIN, register_settings_from, sensor_body, wait_for_record


class HeldProducer:
    """The real producer behind a gate: each send waits until the test opens it (a slow broker, on demand)."""

    def __init__(self, producer) -> None:
        self.producer, self.sending, self.gate = producer, asyncio.Event(), asyncio.Event()

    async def send_and_wait(self, *args, **kwargs):
        self.sending.set()
        await self.gate.wait()
        return await self.producer.send_and_wait(*args, **kwargs)


async def _declared_with_relay_off(settings, organisation) -> str:
    app = create_app(register_settings_from(settings, register_relay_enabled=False))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as client:
            response = await client.post("/v1/sensors", json=sensor_body(organisation), headers=ADMIN)
            assert response.status_code == 201, response.text
            return response.json()["sensor_id"]


async def _unpublished(pool, sensor_id: str) -> int:
    return await pool.fetchval(
        "SELECT count(*) FROM register_outbox WHERE sensor_id = $1 AND published_at IS NULL", sensor_id)


@pytest.fixture
async def relay_mid_pass(settings, organisation):
    """A relay started on a declared sensor's pending row, caught mid-pass: in its transaction, waiting on a held
    broker send. Yields (relay, its task, the held producer, the pool, the sensor id)."""
    sensor_id = await _declared_with_relay_off(settings, organisation)
    pool = await create_pool(settings.database_url)
    producer = make_producer(settings.kafka, f"register-shutdown-{sensor_id}", linger_ms=0)
    await producer.start()
    try:
        held = HeldProducer(producer)
        relay = OutboxRelay(pool, held, settings.topic(REGISTER_SENSORS), "register/shutdown", poll_s=0.1)
        relay.start()
        task = relay._task
        await asyncio.wait_for(held.sending.wait(), 20)
        yield relay, task, held, pool, sensor_id
    finally:
        await producer.stop()
        await close_pool(pool)


async def test_stop_lets_the_pass_in_progress_finish_instead_of_cancelling_it(settings, relay_mid_pass):
    relay, task, held, pool, sensor_id = relay_mid_pass
    stopping = asyncio.create_task(relay.stop(timeout_s=20))
    await asyncio.sleep(0.5)
    assert not stopping.done()  # it waits for the pass rather than cancelling it
    held.gate.set()
    await asyncio.wait_for(stopping, 25)
    assert task.done() and not task.cancelled() and task.exception() is None
    assert await _unpublished(pool, sensor_id) == 0  # the pass finished: sent and stamped
    register = await wait_for_record(settings, sensor_id, lambda r: r is not None)
    assert register[sensor_id].version == 1
    assert await close_pool(pool, timeout_s=5) is True  # every connection came back: nothing left mid-query


async def test_a_pass_stuck_past_the_bound_is_cancelled_and_its_rows_stay_pending(relay_mid_pass):
    relay, task, _held, pool, sensor_id = relay_mid_pass  # the gate never opens: a broker that never acknowledges
    started = time.monotonic()
    await asyncio.wait_for(relay.stop(timeout_s=1.0), 15)
    assert time.monotonic() - started < 10
    assert task.cancelled()
    # Nothing committed is lost: the row is still pending, for the next relay to send.
    assert await _unpublished(pool, sensor_id) == 1


async def test_close_pool_terminates_a_pool_whose_connection_is_never_released(settings):
    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    held = await pool.acquire()  # a task that will never give its connection back
    backend_pid = held.get_server_pid()
    started = time.monotonic()
    assert await close_pool(pool, timeout_s=0.5) is False
    assert time.monotonic() - started < 5
    observer = await asyncpg.connect(settings.database_url)
    try:  # terminated: the server sees the session end (a bound, not a timing assertion)
        end = time.monotonic() + 10
        while await observer.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", backend_pid):
            assert time.monotonic() < end, "the held connection is still open on the server"
            await asyncio.sleep(0.1)
    finally:
        await observer.close()


async def test_close_pool_is_graceful_when_every_connection_is_back(settings):
    pool = await create_pool(settings.database_url, min_size=2, max_size=2)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT 1") == 1
    assert await close_pool(pool, timeout_s=5) is True
