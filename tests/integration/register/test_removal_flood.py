"""Public removal requests are anonymous and land in the append-only audit log: a client address that floods them
gets 429 with Retry-After, and the audit log holds only the requests that were let through."""

from __future__ import annotations

import asyncpg
import httpx

from services.register.app import create_app
from tests.integration.register.conftest import ADMIN, register_settings_from, sensor_body


async def removal_rows(database_url: str, sensor_id: str) -> tuple[int, int]:
    connection = await asyncpg.connect(database_url)
    try:
        audit = await connection.fetchval("SELECT count(*) FROM register_audit_log WHERE sensor_id = $1"
                                          " AND action = 'removal:request'", sensor_id)
        requests = await connection.fetchval("SELECT count(*) FROM register_removal_requests WHERE sensor_id = $1",
                                             sensor_id)
    finally:
        await connection.close()
    return audit, requests


async def test_a_removal_request_flood_gets_429_and_leaves_no_audit_rows(settings, organisation):
    config = register_settings_from(settings, register_removals_burst=3, register_removals_per_minute=1)
    app = create_app(config)
    async with app.router.lifespan_context(app):
        flooder = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        resident = httpx.ASGITransport(app=app, client=("198.51.100.20", 40001))
        async with httpx.AsyncClient(transport=flooder, base_url="http://register") as client, \
                httpx.AsyncClient(transport=resident, base_url="http://register") as other:
            sensor_id = (await client.post("/v1/sensors", json=sensor_body(organisation), headers=ADMIN)).json()[
                "sensor_id"]
            activated = await client.post(f"/v1/sensors/{sensor_id}/status", json={"status": "active"},
                                          headers=ADMIN)
            assert activated.status_code == 200, activated.text
            statuses = []
            for n in range(30):
                answer = await client.post("/public/removal-requests",
                                           json={"sensor_id": sensor_id, "reason": f"flood {n}"})
                statuses.append(answer.status_code)
            assert statuses == [201] * 3 + [429] * 27
            assert answer.json()["reason"] == "RATE_LIMITED" and 1 <= int(answer.headers["Retry-After"]) <= 60
            # Invalid bodies count too: the limit comes before validation and before any database work.
            assert (await client.post("/public/removal-requests", json={"nonsense": 1})).status_code == 429
            # Another address is not affected by the flood.
            allowed = await other.post("/public/removal-requests", json={"sensor_id": sensor_id, "reason": "real"})
            assert allowed.status_code == 201, allowed.text
    assert await removal_rows(settings.database_url, sensor_id) == (4, 4)
