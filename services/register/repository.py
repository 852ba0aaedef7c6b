"""SQL of the register: tables register_sensors, register_credentials(+_sensors), register_audit_log, register_outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

SENSOR_COLUMNS = (
    "sensor_id", "version", "status", "domain", "owner_organisation", "owner_contact_name", "owner_contact_email",
    "contact_role", "metrics", "location", "location_description", "description", "purpose", "legal_ground", "personal_data",
    "privacy_statement_url", "retention_days", "reporting_interval_s", "rate_limit_per_minute", "active_from",
    "active_until", "created_at", "updated_at",
)
_SELECT = f"SELECT {', '.join(SENSOR_COLUMNS)} FROM register_sensors"

Row = dict[str, Any]
# The one lock order of the register: a transaction that locks several sensor rows locks them by sensor id in
# code-point order (Python's `sorted`, PostgreSQL's "C" collation), so two of them never wait on each other in a cycle.
LOCK_IN_SENSOR_ORDER = 'ORDER BY sensor_id COLLATE "C" FOR UPDATE'


async def fetch_sensor(conn: asyncpg.Connection, sensor_id: str, *, for_update: bool = False) -> Row | None:
    row = await conn.fetchrow(f"{_SELECT} WHERE sensor_id = $1{' FOR UPDATE' if for_update else ''}", sensor_id)
    return dict(row) if row else None


async def list_sensors(conn: asyncpg.Connection, *, organisation: str | None = None,
                       statuses: list[str] | None = None, until_before: datetime | None = None) -> list[Row]:
    rows = await conn.fetch(
        f"{_SELECT} WHERE ($1::text IS NULL OR owner_organisation = $1)"
        " AND ($2::text[] IS NULL OR status = ANY($2))"
        " AND ($3::timestamptz IS NULL OR active_until <= $3) ORDER BY sensor_id",
        organisation, statuses, until_before,
    )
    return [dict(row) for row in rows]


async def insert_sensor(conn: asyncpg.Connection, row: Row) -> None:
    """Raises asyncpg.UniqueViolationError on a duplicate id."""
    placeholders = ", ".join(f"${i}" for i in range(1, len(SENSOR_COLUMNS) + 1))
    await conn.execute(f"INSERT INTO register_sensors ({', '.join(SENSOR_COLUMNS)}) VALUES ({placeholders})",
                       *(row[column] for column in SENSOR_COLUMNS))


async def update_sensor(conn: asyncpg.Connection, sensor_id: str, changes: Row) -> None:
    names = [name for name in changes if name in SENSOR_COLUMNS and name != "sensor_id"]  # fixed list: no injection
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
    await conn.execute(f"UPDATE register_sensors SET {assignments} WHERE sensor_id = $1",
                       sensor_id, *(changes[name] for name in names))


async def delete_sensor(conn: asyncpg.Connection, sensor_id: str) -> None:
    await conn.execute("DELETE FROM register_sensors WHERE sensor_id = $1", sensor_id)


async def sensor_credentials(conn: asyncpg.Connection, sensor_id: str) -> list[Row]:
    """Credentials (not revoked) that may publish for the sensor, oldest first."""
    rows = await conn.fetch(
        "SELECT c.key_id, c.kind, c.secret_sha256, c.not_after, c.created_at FROM register_credentials c"
        " JOIN register_credential_sensors s USING (key_id)"
        " WHERE s.sensor_id = $1 AND c.revoked_at IS NULL ORDER BY c.created_at, c.key_id", sensor_id)
    return [dict(row) for row in rows]


async def insert_credential(conn: asyncpg.Connection, *, key_id: str, kind: str, secret_sha256: str,
                            organisation: str, sensor_ids: list[str], created_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO register_credentials (key_id, kind, secret_sha256, organisation, created_at)"
        " VALUES ($1, $2, $3, $4, $5)", key_id, kind, secret_sha256, organisation, created_at)
    await conn.executemany("INSERT INTO register_credential_sensors (key_id, sensor_id) VALUES ($1, $2)",
                           [(key_id, sensor_id) for sensor_id in sensor_ids])


async def restore_credential(conn: asyncpg.Connection, *, key_id: str, kind: str, secret_sha256: str,
                             organisation: str, not_after: datetime | None, sensor_id: str) -> None:
    await conn.execute(
        "INSERT INTO register_credentials (key_id, kind, secret_sha256, organisation, not_after)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key_id) DO NOTHING",
        key_id, kind, secret_sha256, organisation, not_after)
    await conn.execute("INSERT INTO register_credential_sensors (key_id, sensor_id) VALUES ($1, $2)"
                       " ON CONFLICT DO NOTHING", key_id, sensor_id)


async def end_sensor_credentials(conn: asyncpg.Connection, sensor_id: str, not_after: datetime) -> int:
    """Start a rotation's overlap window: the sensor's current sensor-kind credentials stop at `not_after`."""
    result = await conn.execute(
        "UPDATE register_credentials SET not_after = $2 WHERE revoked_at IS NULL AND kind = 'sensor'"
        " AND (not_after IS NULL OR not_after > $2)"
        " AND key_id IN (SELECT key_id FROM register_credential_sensors WHERE sensor_id = $1)",
        sensor_id, not_after)
    return int(result.split()[-1])


async def fetch_credential(conn: asyncpg.Connection, key_id: str) -> Row | None:
    row = await conn.fetchrow(
        "SELECT c.*, array_agg(s.sensor_id ORDER BY s.sensor_id) AS sensor_ids FROM register_credentials c"
        " LEFT JOIN register_credential_sensors s USING (key_id) WHERE c.key_id = $1 GROUP BY c.key_id", key_id)
    return dict(row) if row else None


async def revoke_credential(conn: asyncpg.Connection, key_id: str, at: datetime) -> None:
    await conn.execute("UPDATE register_credentials SET revoked_at = $2 WHERE key_id = $1", key_id, at)


async def append_audit(conn: asyncpg.Connection, *, actor: str, action: str, sensor_id: str | None,
                       before: Any, after: Any, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO register_audit_log (at, actor, action, sensor_id, before, after) VALUES ($1, $2, $3, $4, $5, $6)",
        at, actor, action, sensor_id, before, after)


async def list_audit(conn: asyncpg.Connection, *, sensor_id: str | None, organisation: str | None,
                     limit: int) -> list[Row]:
    rows = await conn.fetch(
        "SELECT a.* FROM register_audit_log a WHERE ($1::text IS NULL OR a.sensor_id = $1)"
        " AND ($2::text IS NULL OR a.sensor_id IN (SELECT sensor_id FROM register_sensors"
        "      WHERE owner_organisation = $2)) ORDER BY a.audit_id DESC LIMIT $3", sensor_id, organisation, limit)
    return [dict(row) for row in rows]


async def enqueue(conn: asyncpg.Connection, sensor_id: str, version: int, payload: dict | None) -> None:
    """Outbox row in the caller's transaction: committed together with the change, or not at all."""
    await conn.execute("INSERT INTO register_outbox (sensor_id, version, payload) VALUES ($1, $2, $3)",
                       sensor_id, version, payload)
