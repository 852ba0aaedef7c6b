"""Pure conversions of a register row: topic record (SensorRegistration), owner view, public GeoJSON feature."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.register import CredentialHash, MetricDeclaration, SensorDetails, SensorRegistration, SensorStatus
from services.register import domain

# Exactly what the public may see. Contact details, credentials and hashes are deliberately absent.
PUBLIC_FIELDS = (
    "sensor_id", "owner_organisation", "contact_role", "domain", "purpose", "legal_ground", "personal_data",
    "privacy_statement_url", "active_until", "status", "location_description", "description", "retention_days",
)
DETAIL_FIELDS = tuple(SensorDetails.model_fields)


def registration(row: dict[str, Any], credentials: list[dict[str, Any]]) -> SensorRegistration:
    """The compacted-topic value: what every gate needs, plus the details needed to rebuild the register."""
    return SensorRegistration(
        sensor_id=row["sensor_id"], version=row["version"], status=row["status"], domain=row["domain"],
        owner_organisation=row["owner_organisation"], active_from=row["active_from"],
        active_until=row["active_until"], metrics=tuple(MetricDeclaration(**m) for m in row["metrics"]),
        rate_limit_per_minute=row["rate_limit_per_minute"], reporting_interval_s=row["reporting_interval_s"],
        credentials=tuple(
            CredentialHash(key_id=c["key_id"], kind=c["kind"], secret_sha256=c["secret_sha256"],
                           not_after=c["not_after"]) for c in credentials),
        updated_at=row["updated_at"],
        location=map_point(row.get("location")),
        details=SensorDetails(**{name: row.get(name) for name in DETAIL_FIELDS}),
    )


def map_point(geometry: dict[str, Any] | None) -> tuple[float, float] | None:
    """Where to draw the sensor on a map, [lon, lat]: the point itself, or the mean vertex of an area's outline."""
    if not geometry:
        return None
    if geometry.get("type") == "Point":
        longitude, latitude = geometry["coordinates"][:2]
        return (float(longitude), float(latitude))
    if geometry.get("type") == "Polygon" and geometry.get("coordinates"):
        ring = geometry["coordinates"][0][:-1] or geometry["coordinates"][0]
        return (sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring))
    return None


# Declaration facts the database requires; the topic's `details` may lack them (the contract makes them optional),
# and a rebuild must never make them up (a legal ground or a purpose nobody declared).
REQUIRED_DETAILS = ("owner_contact_name", "owner_contact_email", "location", "purpose", "legal_ground",
                    "personal_data", "retention_days")
# Optional free text: absent means "none given", stored as the API stores an omitted one.
OPTIONAL_TEXT = ("location_description", "description")


def row_from_registration(record: SensorRegistration) -> dict[str, Any]:
    """Inverse of `registration` (without credentials): a register row rebuilt from the topic alone.

    Details the record lacks stay None; `missing_details` names the required ones so a restore can refuse them.
    """
    details = record.details or SensorDetails()
    row = {name: getattr(details, name) for name in DETAIL_FIELDS}
    row.update(
        sensor_id=record.sensor_id, version=record.version, status=record.status.value,
        domain=record.domain.value, owner_organisation=record.owner_organisation,
        metrics=[m.model_dump(mode="json") for m in record.metrics], active_from=record.active_from,
        active_until=record.active_until, rate_limit_per_minute=record.rate_limit_per_minute,
        reporting_interval_s=record.reporting_interval_s, updated_at=record.updated_at,
    )
    # Bookkeeping, not a declaration: the sensor existed at least by its last change.
    row["created_at"] = row["created_at"] or record.updated_at
    for name in OPTIONAL_TEXT:
        if row[name] is None:
            row[name] = ""
    return row


def missing_details(row: dict[str, Any]) -> list[str]:
    """The required declaration facts a rebuilt row lacks (empty when it can be stored)."""
    return [name for name in REQUIRED_DETAILS if row.get(name) is None]


def view(row: dict[str, Any], credentials: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """What admins and the owning organisation see: the row, its computed expiry, credential ids (never hashes)."""
    status = SensorStatus(row["status"])
    return {
        **row,
        "expired": domain.is_expired(row["active_until"], now),
        "may_publish": domain.may_publish(status, row["active_from"], row["active_until"], now),
        "credentials": [{k: c[k] for k in ("key_id", "kind", "not_after", "created_at")} for c in credentials],
    }


def public_feature(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    """One GeoJSON Feature with public fields only."""
    properties = {name: row[name] for name in PUBLIC_FIELDS}
    properties["metrics"] = [{"name": m["name"], "unit": m["unit"]} for m in row["metrics"]]
    properties["expired"] = domain.is_expired(row["active_until"], now)
    if isinstance(properties["active_until"], datetime):
        properties["active_until"] = properties["active_until"].isoformat()
    return {"type": "Feature", "id": row["sensor_id"], "geometry": row["location"], "properties": properties}


def audit_snapshot(row: dict[str, Any] | None, credentials: list[dict[str, Any]] | None = None) -> dict | None:
    """A JSON-able copy of a row for the audit log; credential hashes are left out (ids suffice as evidence)."""
    if row is None:
        return None
    snapshot = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
    if credentials is not None:
        snapshot["credential_key_ids"] = [c["key_id"] for c in credentials]
    return snapshot
