"""Register use cases. Each change runs in one transaction: row + audit entry + outbox record, or nothing."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from schemas.register import CredentialKind, SensorStatus
from services.register import domain, records
from services.register import repository as repo
from services.register.auth import Principal
from services.register.credentials import new_secret
from services.register.domain import RegisterError
from services.register.metrics import CHANGES
from services.register.models import IssuedCredential, SensorCreate, SensorUpdate


def utc_now() -> datetime:
    return datetime.now(UTC)


def not_found(sensor_id: str) -> RegisterError:
    return RegisterError(404, "UNKNOWN_SENSOR", "sensor_id", f"no sensor {sensor_id!r} in the register")


def generated_id(domain_name: str, organisation: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", organisation.lower()).strip("-")[:24] or "org"
    return f"{domain_name}-{slug}-{secrets.token_hex(3)}"


class RegisterService:
    def __init__(self, pool: asyncpg.Pool, *, rotation_overlap_s: int, on_commit: Callable[[], None] = lambda: None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.pool, self.rotation_overlap_s, self.on_commit, self.clock = pool, rotation_overlap_s, on_commit, clock

    async def _changed(self, conn: asyncpg.Connection, principal: Principal, action: str, sensor_id: str,
                       before: dict | None, before_credentials: list | None) -> dict[str, Any] | None:
        """Write the audit entry and the outbox record of a change already applied in this transaction."""
        after = await repo.fetch_sensor(conn, sensor_id)
        credentials = await repo.sensor_credentials(conn, sensor_id) if after else []
        now = self.clock()
        await repo.append_audit(conn, actor=principal.name, action=action, sensor_id=sensor_id, at=now,
                                before=records.audit_snapshot(before, before_credentials),
                                after=records.audit_snapshot(after, credentials))
        if after is None:
            await repo.enqueue(conn, sensor_id, before["version"] + 1, None)  # tombstone
            return None
        payload = records.registration(after, credentials).model_dump(mode="json", exclude_none=True)
        await repo.enqueue(conn, sensor_id, after["version"], payload)
        CHANGES.labels(action=action).inc()
        return records.view(after, credentials, now)

    async def _locked(self, conn: asyncpg.Connection, principal: Principal, sensor_id: str) -> tuple[dict, list]:
        row = await repo.fetch_sensor(conn, sensor_id, for_update=True)
        if row is None:
            raise not_found(sensor_id)
        principal.require_organisation(row["owner_organisation"], "sensor_id")
        return row, await repo.sensor_credentials(conn, sensor_id)

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
            result = await self._changed(conn, principal, "declare", row["sensor_id"], None, None)
        self.on_commit()
        return result

    async def update(self, principal: Principal, sensor_id: str, update: SensorUpdate) -> dict[str, Any]:
        changes = update.model_dump(mode="python", exclude_unset=True)
        async with self.pool.acquire() as conn, conn.transaction():
            before, credentials = await self._locked(conn, principal, sensor_id)
            if before["status"] == SensorStatus.RETIRED:
                raise RegisterError(409, "SENSOR_RETIRED", "status", "a retired sensor cannot change")
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
            result = await self._changed(conn, principal, "update", sensor_id, before, credentials)
        self.on_commit()
        return result

    async def change_status(self, principal: Principal, sensor_id: str, target: SensorStatus) -> dict[str, Any]:
        async with self.pool.acquire() as conn, conn.transaction():
            before, credentials = await self._locked(conn, principal, sensor_id)
            now = self.clock()
            domain.check_transition(SensorStatus(before["status"]), target)
            if target is SensorStatus.ACTIVE and domain.is_expired(before["active_until"], now):
                raise domain.invalid("active_until", "the sensor has expired; extend active_until before activating",
                                     "SENSOR_EXPIRED")
            await repo.update_sensor(conn, sensor_id, {"status": target.value, "version": before["version"] + 1,
                                                       "updated_at": now})
            result = await self._changed(conn, principal, f"status:{target.value}", sensor_id, before, credentials)
        self.on_commit()
        return result

    async def delete(self, principal: Principal, sensor_id: str) -> None:
        principal.require_admin()
        async with self.pool.acquire() as conn, conn.transaction():
            before, credentials = await self._locked(conn, principal, sensor_id)
            await repo.delete_sensor(conn, sensor_id)
            await self._changed(conn, principal, "delete", sensor_id, before, credentials)
        self.on_commit()

    async def rotate_credential(self, principal: Principal, sensor_id: str,
                                overlap_s: int | None = None) -> IssuedCredential:
        """A new sensor credential; the previous ones keep working until the overlap window ends."""
        async with self.pool.acquire() as conn, conn.transaction():
            before, credentials = await self._locked(conn, principal, sensor_id)
            if before["status"] == SensorStatus.RETIRED:
                raise RegisterError(409, "SENSOR_RETIRED", "status", "a retired sensor gets no credentials")
            now = self.clock()
            not_after = now + timedelta(seconds=self.rotation_overlap_s if overlap_s is None else overlap_s)
            ended = await repo.end_sensor_credentials(conn, sensor_id, not_after)
            fresh = new_secret("sk")
            await repo.insert_credential(conn, key_id=fresh.key_id, kind=CredentialKind.SENSOR.value,
                                         secret_sha256=fresh.secret_sha256, sensor_ids=[sensor_id],
                                         organisation=before["owner_organisation"], created_at=now)
            await repo.update_sensor(conn, sensor_id, {"version": before["version"] + 1, "updated_at": now})
            await self._changed(conn, principal, "credential:issue", sensor_id, before, credentials)
        self.on_commit()
        return IssuedCredential(key_id=fresh.key_id, kind=CredentialKind.SENSOR, credential=fresh.credential,
                                sensor_ids=[sensor_id], replaced_not_after=not_after if ended else None)

    async def issue_gateway(self, principal: Principal, sensor_ids: list[str]) -> IssuedCredential:
        """One credential that may publish for each of the declared sensors (each record lists it)."""
        sensor_ids = sorted(set(sensor_ids))  # fixed lock order: no deadlock between concurrent requests
        fresh = new_secret("gw")
        async with self.pool.acquire() as conn, conn.transaction():
            locked = [await self._locked(conn, principal, sensor_id) for sensor_id in sensor_ids]
            organisations = {row["owner_organisation"] for row, _ in locked}
            if len(organisations) > 1:
                raise domain.invalid("sensor_ids", "a gateway credential serves sensors of one organisation")
            now = self.clock()
            await repo.insert_credential(conn, key_id=fresh.key_id, kind=CredentialKind.GATEWAY.value,
                                         secret_sha256=fresh.secret_sha256, sensor_ids=sensor_ids,
                                         organisation=organisations.pop(), created_at=now)
            for row, credentials in locked:
                await repo.update_sensor(conn, row["sensor_id"], {"version": row["version"] + 1, "updated_at": now})
                await self._changed(conn, principal, "credential:gateway", row["sensor_id"], row, credentials)
        self.on_commit()
        return IssuedCredential(key_id=fresh.key_id, kind=CredentialKind.GATEWAY, credential=fresh.credential,
                                sensor_ids=sensor_ids)

    async def revoke_credential(self, principal: Principal, key_id: str) -> list[str]:
        async with self.pool.acquire() as conn, conn.transaction():
            credential = await repo.fetch_credential(conn, key_id)
            if credential is None or credential["revoked_at"] is not None:
                raise RegisterError(404, "UNKNOWN_CREDENTIAL", "key_id", f"no active credential {key_id!r}")
            principal.require_organisation(credential["organisation"], "key_id")
            sensor_ids = [s for s in credential["sensor_ids"] if s]
            locked = [await self._locked(conn, principal, sensor_id) for sensor_id in sensor_ids]
            now = self.clock()
            await repo.revoke_credential(conn, key_id, now)
            for row, credentials in locked:
                await repo.update_sensor(conn, row["sensor_id"], {"version": row["version"] + 1, "updated_at": now})
                await self._changed(conn, principal, "credential:revoke", row["sensor_id"], row, credentials)
        self.on_commit()
        return sensor_ids
