"""The register's change stream, `citystream.register.sensors.v1` (compacted): what every gate needs to admit."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from schemas.common import AwareDatetime, Domain, SensorId, WireModel


class SensorStatus(StrEnum):
    """Lifecycle: draft → active ⇄ suspended → retired (final). Only `active` may publish."""

    DRAFT = "draft"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    RETIRED = "retired"


class MetricDeclaration(WireModel):
    """A metric the sensor may publish, with its unit and physical range (inclusive)."""

    name: str = Field(description="Smart Data Models attribute name valid for the sensor's domain.")
    unit: str = Field(max_length=32, description="Unit of the value, e.g. `km/h`, `kW`, `fraction`.")
    min: float = Field(description="Lowest physically possible value.")
    max: float = Field(description="Highest physically possible value.")

    @model_validator(mode="after")
    def _min_not_above_max(self) -> MetricDeclaration:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class CredentialKind(StrEnum):
    SENSOR = "sensor"
    GATEWAY = "gateway"


class CredentialHash(WireModel):
    """A credential that may publish for the sensor. Only the SHA-256 of the secret travels; never the secret."""

    key_id: str = Field(description="Public part of the credential, `<key_id>.<secret>` on the wire.")
    kind: CredentialKind = Field(
        default=CredentialKind.SENSOR, description="`sensor` (its own) or `gateway` (publishes for listed sensors)."
    )
    secret_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Hex SHA-256 of the secret.")
    not_after: AwareDatetime | None = Field(
        default=None, description="End of the credential's validity (set during a rotation's overlap window)."
    )


class SensorDetails(WireModel):
    """The register's descriptive fields, carried so the whole register can be rebuilt from the topic alone.

    Gates do not need them. `owner_contact_*` are not public: consumers must not republish them.
    """

    owner_contact_name: str | None = Field(default=None, description="Contact person or team at the owner (not public).")
    owner_contact_email: str | None = Field(default=None, description="Contact e-mail at the owner (not public).")
    contact_role: str | None = Field(
        default=None, max_length=120,
        description="Public point of contact at the owner as a role or functional mailbox (public; never a name).")
    location: dict | None = Field(default=None, description="GeoJSON geometry (Point or Polygon), WGS 84 lon/lat.")
    location_description: str | None = Field(default=None, description="Where the sensor is, in words.")
    description: str | None = Field(default=None, description="What the sensor is.")
    purpose: str | None = Field(default=None, description="Why the data is collected (public).")
    legal_ground: str | None = Field(default=None, description="GDPR Art. 6(1) basis, e.g. `public_task`.")
    personal_data: bool | None = Field(default=None, description="Whether the sensor processes personal data.")
    privacy_statement_url: str | None = Field(default=None, description="The owner's privacy statement.")
    retention_days: int | None = Field(default=None, description="How long readings are kept, in days.")
    created_at: AwareDatetime | None = Field(default=None, description="When the sensor was first declared.")


class SensorRegistration(WireModel):
    """A sensor's admission record, keyed by sensor id. A tombstone (null value) deletes the sensor."""

    sensor_id: SensorId
    version: int = Field(ge=1, description="Bumped on every change; gates keep the highest they saw.")
    status: SensorStatus = Field(description="Lifecycle status; only `active` sensors inside their window publish.")
    domain: Domain = Field(description="Which readings topic the sensor publishes to.")
    owner_organisation: str = Field(description="Who runs the sensor (public).")
    active_from: AwareDatetime | None = Field(default=None, description="Start of the publishing window.")
    active_until: AwareDatetime | None = Field(default=None, description="End of the publishing window.")
    metrics: tuple[MetricDeclaration, ...] = Field(description="Declared metrics; anything else is refused.")
    rate_limit_per_minute: int = Field(ge=1, description="Readings per minute the sensor may publish.")
    reporting_interval_s: float = Field(gt=0, description="Expected interval between readings, in seconds.")
    credentials: tuple[CredentialHash, ...] = Field(default=(), description="Credentials that may publish.")
    updated_at: AwareDatetime = Field(description="When this version was written in the register.")
    details: SensorDetails | None = Field(
        default=None, description="Descriptive register fields (optional; lets the register be rebuilt from the topic)."
    )
    location: tuple[float, float] | None = Field(
        default=None,
        description="GeoJSON position `[longitude, latitude]` (WGS84) of a fixed sensor; absent when undisclosed.",
        examples=[[4.8952, 52.3702]],
    )

    @model_validator(mode="after")
    def _location_on_earth(self) -> SensorRegistration:
        if self.location is not None:
            longitude, latitude = self.location
            if not (-180.0 <= longitude <= 180.0 and -90.0 <= latitude <= 90.0):
                raise ValueError(f"location {list(self.location)} is not [longitude, latitude] in WGS84 degrees")
        return self
