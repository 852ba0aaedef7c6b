"""Builders for ingest tests: register records with credentials, and raw readings."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from schemas.common import Domain
from schemas.register import CredentialHash, CredentialKind, MetricDeclaration, SensorRegistration, SensorStatus

DECLARED = {
    Domain.TRAFFIC: (MetricDeclaration(name="intensity", unit="vehicles", min=0, max=10_000),
                     MetricDeclaration(name="averageVehicleSpeed", unit="km/h", min=0, max=250)),
    Domain.ENERGY: (MetricDeclaration(name="activePower", unit="kW", min=-1000, max=1000),),
    Domain.WASTE: (MetricDeclaration(name="fillingLevel", unit="fraction", min=0, max=1),),
}


def new_credential(kind: CredentialKind = CredentialKind.SENSOR, not_after: datetime | None = None,
                   ) -> tuple[str, CredentialHash]:
    """(`<key_id>.<secret>` as a sender presents it, the hash the register publishes)."""
    key_id, secret = f"k{secrets.token_hex(6)}", secrets.token_urlsafe(32)
    stored = CredentialHash(key_id=key_id, kind=kind, secret_sha256=hashlib.sha256(secret.encode()).hexdigest(),
                            not_after=not_after)
    return f"{key_id}.{secret}", stored


def registration(sensor_id: str, *credentials: CredentialHash, domain: Domain = Domain.TRAFFIC, version: int = 1,
                 status: SensorStatus = SensorStatus.ACTIVE, rate_limit_per_minute: int = 6000,
                 active_from: datetime | None = None, active_until: datetime | None = None) -> SensorRegistration:
    return SensorRegistration(
        sensor_id=sensor_id, version=version, status=status, domain=domain, owner_organisation="Gemeente Test",
        active_from=active_from, active_until=active_until, metrics=DECLARED[domain],
        rate_limit_per_minute=rate_limit_per_minute, reporting_interval_s=60, credentials=credentials,
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def reading(seq: int, observed_at: datetime | None = None, sensor_id: str | None = None, **metrics: float) -> dict:
    observed = observed_at or datetime.now(UTC) - timedelta(seconds=1)
    body = {"seq": seq, "observed_at": observed.isoformat(), "metrics": metrics or {"intensity": 12.0}}
    if sensor_id is not None:
        body["sensor_id"] = sensor_id
    return body
