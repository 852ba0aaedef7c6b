"""The register's change stream on the real broker: publish after commit, outbox recovery, rebuild from the topic."""

from __future__ import annotations

import asyncio
import hashlib

import asyncpg
import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from schemas.register import SensorStatus
from schemas.topics import REGISTER_SENSORS
from services.common import jsonwire
from services.common.db import create_pool
from services.common.kafka import make_admin, make_consumer, make_producer
from services.common.roles import APP_ROLE, with_role
from services.register.app import create_app
from services.register.rebuild import read_register, restore_database
from services.register.relay import OutboxRelay
from tests.integration.register.conftest import (
    ADMIN,
    consume_records,
    register_settings_from,
    sensor_body,
    wait_for_record,
)


async def _declare_and_activate(client, organisation, **overrides) -> str:
    response = await client.post("/v1/sensors", json=sensor_body(organisation, **overrides), headers=ADMIN)
    assert response.status_code == 201, response.text
    sensor_id = response.json()["sensor_id"]
    response = await client.post(f"/v1/sensors/{sensor_id}/status", json={"status": "active"}, headers=ADMIN)
    assert response.status_code == 200, response.text
    return sensor_id


async def test_declare_activate_puts_the_record_on_the_topic(client, settings, organisation):
    sensor_id = await _declare_and_activate(client, organisation)
    issued = (await client.post(f"/v1/sensors/{sensor_id}/credentials", headers=ADMIN)).json()

    register = await wait_for_record(settings, sensor_id, lambda r: r is not None and r.version >= 3)

    record = register[sensor_id]
    assert record.status is SensorStatus.ACTIVE
    assert record.version == 3
    assert [m.name for m in record.metrics] == ["intensity", "averageVehicleSpeed"]
    key_id, secret = issued["credential"].split(".", 1)
    assert [(c.key_id, c.secret_sha256) for c in record.credentials] == [
        (key_id, hashlib.sha256(secret.encode()).hexdigest())]
    assert record.details.owner_contact_email == "jan.contact@example.org"  # the topic can rebuild the register


async def test_suspend_reaches_a_consumer_as_a_new_version(client, settings, organisation):
    sensor_id = await _declare_and_activate(client, organisation)
    consumer = make_consumer(settings.kafka, None, settings.topic(REGISTER_SENSORS))
    await consumer.start()
    try:
        response = await client.post(f"/v1/sensors/{sensor_id}/status", json={"status": "suspended"}, headers=ADMIN)
        assert response.json()["version"] == 3
        seen: dict[int, str] = {}
        async with asyncio.timeout(20):
            while 3 not in seen:
                async for message in consumer:
                    if message.key == sensor_id.encode():
                        value = jsonwire.loads(message.value)
                        seen[value["version"]] = value["status"]
                        break
        assert seen[3] == "suspended"
        assert seen.get(2) in (None, "active")
    finally:
        await consumer.stop()


async def test_a_crash_between_commit_and_publish_still_ends_on_the_topic(settings, organisation):
    """The relay is not running when the change commits (as if the process died right after the commit)."""
    crashed = register_settings_from(settings, register_relay_enabled=False)
    app = create_app(crashed)
    import httpx

    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as client:
            sensor_id = await _declare_and_activate(client, organisation)
    pool = await create_pool(settings.database_url)
    try:
        pending = await pool.fetchval("SELECT count(*) FROM register_outbox WHERE sensor_id = $1"
                                      " AND published_at IS NULL", sensor_id)
        assert pending == 2
        assert sensor_id not in await read_register(settings.kafka, settings.topic(REGISTER_SENSORS))

        # The restarted process: a new relay drains what the dead one left behind.
        producer = make_producer(settings.kafka, "register-restarted", linger_ms=0)
        await producer.start()
        try:
            relay = OutboxRelay(pool, producer, settings.topic(REGISTER_SENSORS), "register/restarted")
            await relay.reconcile()
            while await relay.publish_pending():
                pass
        finally:
            await producer.stop()
        register = await wait_for_record(settings, sensor_id, lambda r: r is not None and r.version == 2)
        assert register[sensor_id].status is SensorStatus.ACTIVE
        assert await pool.fetchval("SELECT published_version FROM register_sensors WHERE sensor_id = $1",
                                   sensor_id) == 2
    finally:
        await pool.close()


async def test_reconciliation_re_enqueues_a_change_whose_outbox_row_was_lost(settings, organisation):
    crashed = register_settings_from(settings, register_relay_enabled=False)
    app = create_app(crashed)
    import httpx

    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as client:
            sensor_id = await _declare_and_activate(client, organisation)
    pool = await create_pool(settings.database_url)
    try:
        await pool.execute("DELETE FROM register_outbox WHERE sensor_id = $1", sensor_id)
        producer = make_producer(settings.kafka, "register-reconcile", linger_ms=0)
        await producer.start()
        try:
            relay = OutboxRelay(pool, producer, settings.topic(REGISTER_SENSORS), "register/reconcile")
            assert await relay.reconcile() >= 1
            while await relay.publish_pending():
                pass
        finally:
            await producer.stop()
        register = await wait_for_record(settings, sensor_id, lambda r: r is not None and r.version == 2)
        assert register[sensor_id].status is SensorStatus.ACTIVE
    finally:
        await pool.close()


async def test_a_fresh_consumer_rebuilds_the_whole_register(client, settings, organisation, fresh_database_url):
    active = [await _declare_and_activate(client, organisation) for _ in range(3)]
    draft = (await client.post("/v1/sensors", json=sensor_body(organisation), headers=ADMIN)).json()["sensor_id"]
    await client.post(f"/v1/sensors/{active[0]}/credentials", headers=ADMIN)
    await client.post(f"/v1/sensors/{active[1]}/status", json={"status": "suspended"}, headers=ADMIN)
    deleted = await _declare_and_activate(client, organisation)
    assert (await client.delete(f"/v1/sensors/{deleted}", headers=ADMIN)).status_code == 204
    expected = {s["sensor_id"]: s for s in (await client.get("/v1/sensors", headers=ADMIN)).json()
                if s["owner_organisation"] == organisation}
    assert set(expected) == {*active, draft}

    await consume_records(settings, deleted, lambda values: None in values)  # the tombstone is on the topic
    register = await wait_for_record(settings, active[1], lambda r: r is not None and r.version == 3)
    ours = {k: v for k, v in register.items() if v.owner_organisation == organisation}
    assert {k: (v.version, v.status.value) for k, v in ours.items()} == {
        k: (v["version"], v["status"]) for k, v in expected.items()}

    # Disaster recovery: empty tables refilled from the topic alone give the same register.
    pool = await create_pool(fresh_database_url)
    try:
        assert await restore_database(pool, ours) == 4
        rebuilt_settings = register_settings_from(settings, database_url=fresh_database_url,
                                                  register_relay_enabled=False)
        app = create_app(rebuilt_settings)
        import httpx

        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as rebuilt:
                restored = {s["sensor_id"]: s for s in (await rebuilt.get("/v1/sensors", headers=ADMIN)).json()}
        for sensor_id, original in expected.items():
            for field in ("version", "status", "metrics", "location", "purpose", "owner_contact_email",
                          "active_until", "legal_ground"):
                assert restored[sensor_id][field] == original[field], (sensor_id, field)
            assert [c["key_id"] for c in restored[sensor_id]["credentials"]] == [
                c["key_id"] for c in original["credentials"]]
    finally:
        await pool.close()


async def test_a_delete_puts_a_tombstone_on_the_compacted_topic_and_a_rebuild_drops_the_sensor(
        client, settings, organisation):
    deleted = await _declare_and_activate(client, organisation)
    kept = await _declare_and_activate(client, organisation)
    assert (await client.delete(f"/v1/sensors/{deleted}", headers=ADMIN)).status_code == 204

    values = await consume_records(settings, deleted, lambda seen: None in seen)
    assert [v and (v["version"], v["status"]) for v in values] == [(1, "draft"), (2, "active"), None]

    admin = make_admin(settings.kafka)
    await admin.start()
    try:
        [described] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC,
                                                                   settings.topic(REGISTER_SENSORS))])
        configs = {name: value for name, value, *_ in described.resources[0][4]}
    finally:
        await admin.close()
    assert configs["cleanup.policy"] == "compact"  # so the tombstone eventually removes the key for good

    register = await read_register(settings.kafka, settings.topic(REGISTER_SENSORS))
    assert deleted not in register
    assert (register[kept].version, register[kept].status) == (2, SensorStatus.ACTIVE)


async def test_the_application_role_cannot_alter_audit_rows(client, settings, organisation):
    sensor_id = await _declare_and_activate(client, organisation)
    conn = await asyncpg.connect(with_role(settings.database_url, APP_ROLE))
    try:
        # Really the application's role, and one the grants bind (neither superuser nor table owner).
        assert await conn.fetchval("SELECT current_user") == APP_ROLE
        assert await conn.fetchval("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user") is False
        assert await conn.fetchval("SELECT tableowner FROM pg_tables WHERE tablename = 'register_audit_log'") != APP_ROLE
        rows = await conn.fetch("SELECT audit_id, actor, action FROM register_audit_log WHERE sensor_id = $1"
                                " ORDER BY audit_id", sensor_id)
        assert [r["action"] for r in rows] == ["declare", "status:active"]
        await conn.execute("INSERT INTO register_audit_log (actor, action, sensor_id) VALUES ('t', 'note', $1)",
                           sensor_id)
        before = await conn.fetch("SELECT * FROM register_audit_log ORDER BY audit_id")
        for statement in ("UPDATE register_audit_log SET actor = 'forged' WHERE sensor_id = $1",
                          "DELETE FROM register_audit_log WHERE sensor_id = $1",
                          "TRUNCATE register_audit_log"):
            args = (sensor_id,) if "$1" in statement else ()
            # "permission denied" is the grant check; the append-only trigger (for everyone) says otherwise.
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                await conn.execute(statement, *args)
        for privilege in ("UPDATE", "DELETE", "TRUNCATE"):
            assert await conn.fetchval("SELECT has_table_privilege('register_audit_log', $1)", privilege) is False
        assert await conn.fetch("SELECT * FROM register_audit_log ORDER BY audit_id") == before
    finally:
        await conn.close()
