"""Shared steps of every register change: lock the sensor row, then write audit entry + outbox record (same transaction)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from schemas.register import SensorStatus
from services.register import records
from services.register import repository as repo
from services.register.auth import Principal
from services.register.domain import RegisterError
from services.register.metrics import CHANGES


def not_found(sensor_id: str) -> RegisterError:
    return RegisterError(404, "UNKNOWN_SENSOR", "sensor_id", f"no sensor {sensor_id!r} in the register")


def refuse_retired(row: dict, detail: str) -> None:
    """Retired is final: no new version of the record, no new credential (only an admin's delete removes it)."""
    if row["status"] == SensorStatus.RETIRED:
        raise RegisterError(409, "SENSOR_RETIRED", "status", f"sensor {row['sensor_id']!r} is retired: {detail}")


async def lock_sensor(conn: asyncpg.Connection, principal: Principal, sensor_id: str) -> tuple[dict, list]:
    """The sensor row (locked until commit) and its credentials, if the principal may act on it."""
    row = await repo.fetch_sensor(conn, sensor_id, for_update=True)
    if row is None:
        raise not_found(sensor_id)
    principal.require_organisation(row["owner_organisation"], "sensor_id")
    return row, await repo.sensor_credentials(conn, sensor_id)


async def record_change(conn: asyncpg.Connection, principal: Principal, action: str, sensor_id: str,
                        before: dict | None, before_credentials: list | None, now: datetime) -> dict[str, Any] | None:
    """Write the audit entry and the outbox record of a change already applied in this transaction."""
    after = await repo.fetch_sensor(conn, sensor_id)
    credentials = await repo.sensor_credentials(conn, sensor_id) if after else []
    await repo.append_audit(conn, actor=principal.name, action=action, sensor_id=sensor_id, at=now,
                            before=records.audit_snapshot(before, before_credentials),
                            after=records.audit_snapshot(after, credentials))
    CHANGES.labels(action=action).inc()
    if after is None:
        await repo.enqueue(conn, sensor_id, before["version"] + 1, None)  # tombstone
        return None
    payload = records.registration(after, credentials).model_dump(mode="json", exclude_none=True)
    await repo.enqueue(conn, sensor_id, after["version"], payload)
    return records.view(after, credentials, now)
