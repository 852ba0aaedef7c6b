"""Read side of the register: owner views, expiring sensors, the public GeoJSON, the audit trail."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.register import domain, records
from services.register import repository as repo
from services.register.auth import Principal
from services.register.changes import not_found

PUBLIC_STATUSES = ["active", "suspended", "retired"]


async def sensor_view(conn: asyncpg.Connection, principal: Principal, sensor_id: str, now: datetime) -> dict:
    row = await repo.fetch_sensor(conn, sensor_id)
    if row is None:
        raise not_found(sensor_id)
    principal.require_organisation(row["owner_organisation"], "sensor_id")
    return records.view(row, await repo.sensor_credentials(conn, sensor_id), now)


async def sensor_views(conn: asyncpg.Connection, principal: Principal, now: datetime, *,
                       statuses: list[str] | None = None, expired: bool | None = None,
                       expiring_days: float | None = None) -> list[dict[str, Any]]:
    """Sensors the principal may see; `expired` filters on the computed expiry, `expiring_days` on what is near."""
    until_before = now + timedelta(days=expiring_days) if expiring_days is not None else None
    rows = await repo.list_sensors(conn, organisation=principal.organisation, statuses=statuses,
                                   until_before=until_before)
    if expired is not None:
        rows = [row for row in rows if domain.is_expired(row["active_until"], now) == expired]
    if expiring_days is not None:
        rows = [row for row in rows if domain.expires_within(row["active_until"], now, expiring_days)]
    return [records.view(row, await repo.sensor_credentials(conn, row["sensor_id"]), now) for row in rows]


async def public_geojson(conn: asyncpg.Connection, now: datetime) -> dict[str, Any]:
    """Every non-draft sensor, public fields only."""
    rows = await repo.list_sensors(conn, statuses=PUBLIC_STATUSES)
    return {"type": "FeatureCollection", "features": [records.public_feature(row, now) for row in rows]}


async def audit_trail(conn: asyncpg.Connection, principal: Principal, sensor_id: str | None,
                      limit: int) -> list[dict[str, Any]]:
    if sensor_id is not None:
        row = await repo.fetch_sensor(conn, sensor_id)
        if row is not None:
            principal.require_organisation(row["owner_organisation"], "sensor_id")
        elif principal.organisation is not None:
            raise not_found(sensor_id)  # deleted sensors' history is for admins only
    return await repo.list_audit(conn, sensor_id=sensor_id, organisation=principal.organisation, limit=limit)
