"""Credential use cases: issue/rotate a sensor credential, gateway credentials, revocation (each bumps the records)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg

from schemas.register import CredentialKind, SensorStatus
from services.register import domain
from services.register import repository as repo
from services.register.auth import Principal
from services.register.changes import lock_sensor, record_change, refuse_retired
from services.register.credentials import new_secret
from services.register.domain import RegisterError
from services.register.models import IssuedCredential


class CredentialService:
    def __init__(self, pool: asyncpg.Pool, *, rotation_overlap_s: int, on_commit: Callable[[], None],
                 clock: Callable[[], datetime]) -> None:
        self.pool, self.rotation_overlap_s, self.on_commit, self.clock = pool, rotation_overlap_s, on_commit, clock

    async def rotate_credential(self, principal: Principal, sensor_id: str,
                                overlap_s: int | None = None) -> IssuedCredential:
        """A new sensor credential; the previous ones keep working until the overlap window ends."""
        async with self.pool.acquire() as conn, conn.transaction():
            before, credentials = await lock_sensor(conn, principal, sensor_id)
            refuse_retired(before, "a retired sensor gets no credentials")
            now = self.clock()
            not_after = now + timedelta(seconds=self.rotation_overlap_s if overlap_s is None else overlap_s)
            ended = await repo.end_sensor_credentials(conn, sensor_id, not_after)
            fresh = new_secret("sk")
            await repo.insert_credential(conn, key_id=fresh.key_id, kind=CredentialKind.SENSOR.value,
                                         secret_sha256=fresh.secret_sha256, sensor_ids=[sensor_id],
                                         organisation=before["owner_organisation"], created_at=now)
            await repo.update_sensor(conn, sensor_id, {"version": before["version"] + 1, "updated_at": now})
            await record_change(conn, principal, "credential:issue", sensor_id, before, credentials, now)
        self.on_commit()
        return IssuedCredential(key_id=fresh.key_id, kind=CredentialKind.SENSOR, credential=fresh.credential,
                                sensor_ids=[sensor_id], replaced_not_after=not_after if ended else None)

    async def issue_gateway(self, principal: Principal, sensor_ids: list[str]) -> IssuedCredential:
        """One credential that may publish for each of the declared sensors (each record lists it)."""
        sensor_ids = sorted(set(sensor_ids))  # the lock order of repo.LOCK_IN_SENSOR_ORDER
        fresh = new_secret("gw")
        async with self.pool.acquire() as conn, conn.transaction():
            locked = [await lock_sensor(conn, principal, sensor_id) for sensor_id in sensor_ids]
            for row, _ in locked:
                refuse_retired(row, "a retired sensor gets no credentials")
            organisations = {row["owner_organisation"] for row, _ in locked}
            if len(organisations) > 1:
                raise domain.invalid("sensor_ids", "a gateway credential serves sensors of one organisation")
            now = self.clock()
            await repo.insert_credential(conn, key_id=fresh.key_id, kind=CredentialKind.GATEWAY.value,
                                         secret_sha256=fresh.secret_sha256, sensor_ids=sensor_ids,
                                         organisation=organisations.pop(), created_at=now)
            for row, credentials in locked:
                await repo.update_sensor(conn, row["sensor_id"], {"version": row["version"] + 1, "updated_at": now})
                await record_change(conn, principal, "credential:gateway", row["sensor_id"], row, credentials, now)
        self.on_commit()
        return IssuedCredential(key_id=fresh.key_id, kind=CredentialKind.GATEWAY, credential=fresh.credential,
                                sensor_ids=sensor_ids)

    async def revoke_credential(self, principal: Principal, key_id: str) -> list[str]:
        async with self.pool.acquire() as conn, conn.transaction():
            credential = await repo.fetch_credential(conn, key_id)
            if credential is None or credential["revoked_at"] is not None:
                raise RegisterError(404, "UNKNOWN_CREDENTIAL", "key_id", f"no active credential {key_id!r}")
            principal.require_organisation(credential["organisation"], "key_id")
            sensor_ids = sorted(s for s in credential["sensor_ids"] if s)  # the lock order issue_gateway uses
            locked = [await lock_sensor(conn, principal, sensor_id) for sensor_id in sensor_ids]
            now = self.clock()
            await repo.revoke_credential(conn, key_id, now)
            # Revoking always works (a gateway may also serve live sensors), but a retired record gets no new
            # version: it cannot publish whatever it lists.
            for row, credentials in locked:
                if row["status"] == SensorStatus.RETIRED:
                    continue
                await repo.update_sensor(conn, row["sensor_id"], {"version": row["version"] + 1, "updated_at": now})
                await record_change(conn, principal, "credential:revoke", row["sensor_id"], row, credentials, now)
        self.on_commit()
        return sensor_ids
