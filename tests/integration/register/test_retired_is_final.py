"""Retired is final: no mutating path gives a retired sensor a new version or a credential (real database)."""

from __future__ import annotations

import pytest

from services.common.db import create_pool
from tests.integration.register.conftest import ADMIN, sensor_body


@pytest.fixture
async def state(settings):
    """state(sensor_id) -> (version, outbox rows, audit rows, credentials not revoked)."""
    pool = await create_pool(settings.database_url, max_size=1)

    async def take(sensor_id: str) -> tuple[int, int, int, list[str]]:
        return (await pool.fetchval("SELECT version FROM register_sensors WHERE sensor_id = $1", sensor_id),
                await pool.fetchval("SELECT count(*) FROM register_outbox WHERE sensor_id = $1", sensor_id),
                await pool.fetchval("SELECT count(*) FROM register_audit_log WHERE sensor_id = $1", sensor_id),
                [r["key_id"] for r in await pool.fetch(
                    "SELECT c.key_id FROM register_credentials c JOIN register_credential_sensors s USING (key_id)"
                    " WHERE s.sensor_id = $1 AND c.revoked_at IS NULL ORDER BY c.key_id", sensor_id)])

    yield take
    await pool.close()


async def _active(client, organisation) -> str:
    sensor_id = (await client.post("/v1/sensors", json=sensor_body(organisation), headers=ADMIN)).json()["sensor_id"]
    response = await client.post(f"/v1/sensors/{sensor_id}/status", json={"status": "active"}, headers=ADMIN)
    assert response.status_code == 200, response.text
    return sensor_id


async def test_no_path_gives_a_retired_sensor_a_new_version_or_credential(client, organisation, state):
    retired, live = await _active(client, organisation), await _active(client, organisation)
    gateway = (await client.post("/v1/gateway-credentials", json={"sensor_ids": [retired, live]},
                                 headers=ADMIN)).json()
    assert (await client.post(f"/v1/sensors/{retired}/status", json={"status": "retired"},
                              headers=ADMIN)).status_code == 200
    frozen, live_before = await state(retired), await state(live)
    assert frozen[0] == 4 and frozen[3] == [gateway["key_id"]]

    refused = [
        await client.patch(f"/v1/sensors/{retired}", json={"purpose": "new purpose"}, headers=ADMIN),
        *[await client.post(f"/v1/sensors/{retired}/status", json={"status": target}, headers=ADMIN)
          for target in ("active", "suspended", "retired", "draft")],
        await client.post(f"/v1/sensors/{retired}/credentials", headers=ADMIN),
        await client.post(f"/v1/sensors/{retired}/credentials", json={"overlap_seconds": 0}, headers=ADMIN),
        await client.post("/v1/gateway-credentials", json={"sensor_ids": [retired]}, headers=ADMIN),
        await client.post("/v1/gateway-credentials", json={"sensor_ids": [live, retired]}, headers=ADMIN),
    ]
    assert [(r.status_code, r.json()["field"]) for r in refused] == [(409, "status")] * len(refused), [
        r.text for r in refused]
    assert {r.json()["reason"] for r in refused} <= {"SENSOR_RETIRED", "INVALID_TRANSITION"}
    assert await state(retired) == frozen
    assert await state(live) == live_before  # the refused gateway wrote nothing for its other sensor either

    # Revoking a credential the retired sensor lists still works (it serves a live sensor too): the live record
    # gets a new version, the retired one none.
    assert (await client.delete(f"/v1/credentials/{gateway['key_id']}", headers=ADMIN)).status_code == 204
    assert (await state(live))[0] == live_before[0] + 1
    version, outbox, audit, _ = await state(retired)
    assert (version, outbox, audit) == frozen[:3]

    # An admin may still remove the record altogether (a tombstone, not a new version).
    assert (await client.delete(f"/v1/sensors/{retired}", headers=ADMIN)).status_code == 204
    assert (await client.get(f"/v1/sensors/{retired}", headers=ADMIN)).status_code == 404
