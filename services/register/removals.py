"""Residents' removal requests (table register_removal_requests): public submit, owners/admins list and close."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from services.register import repository as repo
from services.register.auth import Principal
from services.register.domain import RegisterError
from services.register.models import RemovalRequestCreate


async def submit(conn: asyncpg.Connection, request: RemovalRequestCreate, now: datetime) -> int:
    async with conn.transaction():
        row = await repo.fetch_sensor(conn, request.sensor_id)
        if row is None or row["status"] == "draft":  # drafts are not public: do not reveal they exist
            raise RegisterError(404, "UNKNOWN_SENSOR", "sensor_id", f"no public sensor {request.sensor_id!r}")
        request_id = await conn.fetchval(
            "INSERT INTO register_removal_requests (sensor_id, reason, requester_email, created_at)"
            " VALUES ($1, $2, $3, $4) RETURNING request_id", request.sensor_id, request.reason,
            request.requester_email, now)
        await repo.append_audit(conn, actor="public", action="removal:request", sensor_id=request.sensor_id,
                                before=None, after={"request_id": request_id, "reason": request.reason}, at=now)
    return request_id


async def list_requests(conn: asyncpg.Connection, principal: Principal, status: str | None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT r.* FROM register_removal_requests r JOIN register_sensors s USING (sensor_id)"
        " WHERE ($1::text IS NULL OR s.owner_organisation = $1) AND ($2::text IS NULL OR r.status = $2)"
        " ORDER BY r.request_id", principal.organisation, status)
    return [dict(row) for row in rows]


async def close(conn: asyncpg.Connection, principal: Principal, request_id: int, resolution: str,
                now: datetime) -> dict[str, Any]:
    async with conn.transaction():
        row = await conn.fetchrow(
            "SELECT r.*, s.owner_organisation FROM register_removal_requests r JOIN register_sensors s"
            " USING (sensor_id) WHERE r.request_id = $1 FOR UPDATE OF r", request_id)
        if row is None:
            raise RegisterError(404, "UNKNOWN_REQUEST", "request_id", f"no removal request {request_id}")
        principal.require_organisation(row["owner_organisation"], "request_id")
        if row["status"] == "closed":
            raise RegisterError(409, "ALREADY_CLOSED", "request_id", f"removal request {request_id} is closed")
        closed = await conn.fetchrow(
            "UPDATE register_removal_requests SET status = 'closed', closed_at = $2, closed_by = $3, resolution = $4"
            " WHERE request_id = $1 RETURNING *", request_id, now, principal.name, resolution)
        await repo.append_audit(conn, actor=principal.name, action="removal:close", sensor_id=row["sensor_id"],
                                before={"request_id": request_id, "status": "open"},
                                after={"request_id": request_id, "status": "closed", "resolution": resolution},
                                at=now)
    return dict(closed)
