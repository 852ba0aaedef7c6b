"""Sensor use cases (declare, update, lifecycle, delete). Each change runs in one transaction: row + audit entry + outbox record, or nothing."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg

from schemas.register import SensorStatus
from services.register import domain
from services.register import repository as repo
from services.register.auth import Principal
from services.register.changes import lock_sensor, record_change, refuse_retired
from services.register.domain import RegisterError
from services.register.models import SensorCreate, SensorUpdate


def utc_now() -> datetime:
    return datetime.now(UTC)


def generated_id(domain_name: str, organisation: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", organisation.lower()).strip("-")[:24] or "org"
    return f"{domain_name}-{slug}-{secrets.token_hex(3)}"


class RegisterService:
    def __init__(self, pool: asyncpg.Pool, *, rotation_overlap_s: int, on_commit: Callable[[], None] = lambda: None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.pool, self.rotation_overlap_s, self.on_commit, self.clock = pool, rotation_overlap_s, on_commit, clock

    async def declare(self, principal: Principal, create: SensorCreate) -> dict[str, Any]:
        principal.require_organisation(create.owner_organisation)
        now = self.clock()
        domain.check_metrics(create.domain, create.metrics)
        domain.check_window(create.active_from, create.active_until, now)
        domain.check_privacy(create.personal_data, create.privacy_statement_url)
        row = create.model_dump(mode="python")
        row.update(sensor_id=create.sensor_id or generated_id(create.domain.value, create.owner_organisation),
                   version=1, status=SensorStatus.DRAFT.value, domain=create.domain.value,
                   legal_ground=create.legal_ground.value, created_at=now, updated_at=now,
                   metrics=[m.model_dump(mode="json") for m in create.metrics],
                   location=create.location.model_dump(mode="json"))
        async with self.pool.acquire() as conn, conn.transaction():
            try:
                await repo.insert_sensor(conn, row)
            except asyncpg.UniqueViolationError:
                raise RegisterError(409, "DUPLICATE_SENSOR", "sensor_id",
                                    f"sensor {row['sensor_id']!r} is already registered") from None
            result = await record_change(conn, principal, "declare", row["sensor_id"], None, None, now)
        self.on_commit()
        return result

    async def update(self, principal: Principal, sensor_id: str, update: SensorUpdate) -> dict[str, Any]:
        changes = update.model_dump(mode="python", exclude_unset=True)
        async with self.pool.acquire() as conn, conn.transaction():
            before, credentials = await lock_sensor(conn, principal, sensor_id)
            refuse_retired(before, "a retired sensor cannot change")
            if not changes:  # a new version that changes nothing would still reach every gate and the audit trail
                raise RegisterError(422, "EMPTY_UPDATE", None, "the update names no field; send the fields to change")
            merged = {**before, **changes}
            now = self.clock()
            if "metrics" in changes:
                domain.check_metrics(before["domain"], update.metrics)
                changes["metrics"] = [m.model_dump(mode="json") for m in update.metrics]
            if {"active_from", "active_until"} & changes.keys():
                domain.check_window(merged["active_from"], merged["active_until"], now)
            domain.check_privacy(merged["personal_data"], merged["privacy_statement_url"])
            if update.location is not None:
                changes["location"] = update.location.model_dump(mode="json")
            if update.legal_ground is not None:
                changes["legal_ground"] = update.legal_ground.value
            await repo.update_sensor(conn, sensor_id, {**changes, "version": before["version"] + 1, "updated_at": now})
            result = await record_change(conn, principal, "update", sensor_id, before, credentials, now)
        self.on_commit()
        return result

    async def change_status(self, principal: Principal, sensor_id: str, target: SensorStatus) -> dict[str, Any]:
        async with self.pool.acquire() as conn, conn.transaction():
            before, credentials = await lock_sensor(conn, principal, sensor_id)
            now = self.clock()
            domain.check_transition(SensorStatus(before["status"]), target)
            if target is SensorStatus.ACTIVE and domain.is_expired(before["active_until"], now):
                raise domain.invalid("active_until", "the sensor has expired; extend active_until before activating",
                                     "SENSOR_EXPIRED")
            await repo.update_sensor(conn, sensor_id, {"status": target.value, "version": before["version"] + 1,
                                                       "updated_at": now})
            result = await record_change(conn, principal, f"status:{target.value}", sensor_id, before, credentials,
                                         now)
        self.on_commit()
        return result

    async def delete(self, principal: Principal, sensor_id: str) -> None:
        principal.require_admin()
        async with self.pool.acquire() as conn, conn.transaction():
            before, credentials = await lock_sensor(conn, principal, sensor_id)
            now = self.clock()
            await repo.delete_sensor(conn, sensor_id)
            await record_change(conn, principal, "delete", sensor_id, before, credentials, now)
        self.on_commit()
