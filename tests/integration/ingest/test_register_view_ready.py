"""The register view reports ready only once it has replayed the register topic up to the end offsets it saw at
start: /readyz is 503 while the replay is part-way (the follower held between fetches), and once it says 200
every record of the topic is in the view."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from services.common import compacted
from services.ingest.http_app import create_app
from services.ingest.runtime import GateRuntime
from tests.integration.ingest.helpers import ingest_settings, publish_register
from tests.support.ingest_factories import new_credential, registration

SENSORS = 1500
FETCH_RECORDS = 100  # records the held follower may take per step


async def test_readyz_is_503_until_the_register_replay_is_complete(settings, monkeypatch):
    uid = uuid.uuid4().hex[:8]
    _, stored = new_credential()
    names = [f"traffic-{uid}-{n:05d}" for n in range(SENSORS)]
    await publish_register(settings, *(registration(name, stored) for name in names))

    step = asyncio.Semaphore(0)  # one release = one fetch of at most FETCH_RECORDS records
    real_make_consumer = compacted.make_consumer

    def held_consumer(*args, **kwargs):
        consumer = real_make_consumer(*args, **kwargs)
        real_getmany = consumer.getmany

        async def getmany(*partitions, timeout_ms=0, max_records=None):
            await step.acquire()
            return await real_getmany(*partitions, timeout_ms=timeout_ms, max_records=FETCH_RECORDS)

        consumer.getmany = getmany
        return consumer

    monkeypatch.setattr(compacted, "make_consumer", held_consumer)
    gate_settings = ingest_settings(settings)
    runtime = GateRuntime.build(gate_settings, "http")
    runtime.start()
    try:
        await asyncio.wait_for(runtime.producer_started.wait(), 30)
        transport = httpx.ASGITransport(app=create_app(gate_settings, runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            not_ready_part_way = 0
            for _ in range(SENSORS):  # far more steps than the replay needs
                answer = await client.get("/readyz")
                seen = len(runtime.view.state)
                if answer.status_code == 200:
                    break
                assert answer.json()["checks"]["register"] == {"ok": False, "detail": "catching_up"}
                not_ready_part_way += 0 < seen < SENSORS
                step.release()
                await asyncio.sleep(0.01)
            assert answer.status_code == 200, answer.text
            # The replay really was observed part-way, each time not ready ...
            assert not_ready_part_way >= SENSORS // FETCH_RECORDS // 2
            # ... and ready means complete: every record of the topic is in the view.
            assert answer.json()["checks"]["register"] == {"ok": True, "detail": f"{SENSORS} sensors"}
            assert all(runtime.view.state.get(name) is not None for name in names)
    finally:
        for _ in range(100):
            step.release()  # let a held fetch return, so the follower stops promptly
        await runtime.stop()
