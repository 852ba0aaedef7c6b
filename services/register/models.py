"""HTTP models of the register API: SensorCreate / SensorUpdate in, SensorView (owners) and public features out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.common import AwareDatetime, Domain, SensorId
from schemas.register import CredentialKind, MetricDeclaration, SensorStatus
from services.register.domain import LegalGround

Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]
Url = Annotated[str, Field(pattern=r"^https?://\S+$", max_length=2048)]
Text = Annotated[str, Field(max_length=2000)]
# Published on the public map: a role or a functional mailbox, one line (a person's name belongs in the
# non-public owner_contact_name).
ContactRole = Annotated[str, Field(min_length=2, max_length=120, pattern=r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$",
                                   description="Public point of contact at the owner as a role or functional "
                                               "mailbox, e.g. `Traffic department, sensor desk`; never a person's "
                                               "name (shown on the public map).",
                                   examples=["Traffic department, sensor desk"])]


def _check_position(position: tuple[float, float]) -> tuple[float, float]:
    longitude, latitude = position
    if not -180 <= longitude <= 180:
        raise ValueError(f"longitude {longitude} is outside -180..180 (GeoJSON order is [lon, lat])")
    if not -90 <= latitude <= 90:
        raise ValueError(f"latitude {latitude} is outside -90..90 (GeoJSON order is [lon, lat])")
    return position


class PointLocation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["Point"]
    coordinates: tuple[float, float]

    _valid = field_validator("coordinates")(staticmethod(_check_position))


class AreaLocation(BaseModel):
    """An area (GeoJSON Polygon, outer ring only) for a mobile sensor."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["Polygon"]
    coordinates: tuple[tuple[tuple[float, float], ...]] = Field(description="One closed ring of ≥ 4 positions.")

    @field_validator("coordinates")
    @classmethod
    def _closed_ring(cls, rings):
        ring = rings[0]
        if len(ring) < 4 or ring[0] != ring[-1]:
            raise ValueError("a polygon ring needs at least 4 positions and must end where it starts")
        for position in ring:
            _check_position(position)
        return rings


Location = Annotated[PointLocation | AreaLocation, Field(discriminator="type")]


class SensorFields(BaseModel):
    """Fields an owner may change after declaring (all optional in an update)."""

    model_config = ConfigDict(extra="forbid")
    owner_contact_name: Annotated[str, Field(min_length=1, max_length=200)]
    owner_contact_email: Email
    contact_role: ContactRole | None = None
    metrics: Annotated[list[MetricDeclaration], Field(min_length=1, max_length=16)]
    location: Location
    location_description: Text = ""
    description: Text = ""
    purpose: Annotated[str, Field(min_length=1, max_length=2000)]
    legal_ground: LegalGround
    personal_data: bool
    privacy_statement_url: Url | None = None
    retention_days: Annotated[int, Field(ge=0, le=36500)]
    reporting_interval_s: Annotated[float, Field(gt=0, le=86400 * 7)]
    rate_limit_per_minute: Annotated[int, Field(ge=1, le=600_000)]
    active_from: AwareDatetime | None = None
    active_until: AwareDatetime | None = None


class SensorCreate(SensorFields):
    sensor_id: SensorId | None = Field(default=None, description="Owner-chosen id; generated when omitted.")
    owner_organisation: Annotated[str, Field(min_length=1, max_length=200)]
    domain: Domain


# In a PATCH, null clears a field; only these columns may be empty (no end of window, no privacy statement, no
# public contact role).
CLEARABLE_FIELDS = frozenset({"privacy_statement_url", "contact_role", "active_from", "active_until"})


class SensorUpdate(BaseModel):
    """A partial update; the merged record is validated as a whole. Omit a field to keep it; null clears one of
    CLEARABLE_FIELDS and is refused (422 naming the field) for every other field."""

    model_config = ConfigDict(extra="forbid")
    owner_contact_name: Annotated[str, Field(min_length=1, max_length=200)] = None
    owner_contact_email: Email = None
    contact_role: ContactRole | None = None
    metrics: Annotated[list[MetricDeclaration], Field(min_length=1, max_length=16)] = None
    location: Location = None
    location_description: Text = None
    description: Text = None
    purpose: Annotated[str, Field(min_length=1, max_length=2000)] = None
    legal_ground: LegalGround = None
    personal_data: bool = None
    privacy_statement_url: Url | None = None
    retention_days: Annotated[int, Field(ge=0, le=36500)] = None
    reporting_interval_s: Annotated[float, Field(gt=0, le=86400 * 7)] = None
    rate_limit_per_minute: Annotated[int, Field(ge=1, le=600_000)] = None
    active_from: AwareDatetime | None = None
    active_until: AwareDatetime | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value, info):
        # Defaults are not validated, so this sees only values the client sent.
        if value is None and info.field_name not in CLEARABLE_FIELDS:
            raise ValueError(f"{info.field_name} may not be null; omit it to keep the current value")
        return value


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: SensorStatus


class CredentialInfo(BaseModel):
    key_id: str
    kind: CredentialKind
    not_after: datetime | None
    created_at: datetime


class SensorView(SensorCreate):
    """What admins and the owning organisation see (never secrets or their hashes)."""

    model_config = ConfigDict(extra="ignore")
    sensor_id: str
    status: SensorStatus
    version: int
    expired: bool = Field(description="active_until has passed: the gates refuse its readings.")
    may_publish: bool
    created_at: datetime
    updated_at: datetime
    credentials: list[CredentialInfo] = []


class IssuedCredential(BaseModel):
    """Shown exactly once: only the hash of `secret` is stored."""

    key_id: str
    kind: CredentialKind
    credential: str = Field(description="`<key_id>.<secret>`: send as `Authorization: Bearer …`.")
    sensor_ids: list[str]
    replaced_not_after: datetime | None = Field(default=None, description="When the previous credentials stop.")


class RotateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overlap_seconds: Annotated[int, Field(ge=0, le=30 * 86400)] | None = None


class GatewayCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sensor_ids: Annotated[list[SensorId], Field(min_length=1, max_length=1000)]


class OwnerTokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    organisation: Annotated[str, Field(min_length=1, max_length=200)]


class RemovalRequestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sensor_id: SensorId
    reason: Annotated[str, Field(min_length=3, max_length=2000)]
    requester_email: Email | None = None


class RemovalClose(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resolution: Annotated[str, Field(min_length=1, max_length=2000)]
