"""Request and response models of the operations API (alerts themselves are schemas.alerts.AlertEvent)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.alerts import AlertActionType, AlertEvent
from schemas.common import Domain
from services.api.status import MapStatus

T = TypeVar("T")

# Examples shown in the OpenAPI document (a test fails when a request body or 2xx JSON response lacks one).
EXAMPLE_ALERT: dict[str, Any] = {
    "event_id": "a-waste-ams-0007-overflow-88-opened", "alert_id": "a-waste-ams-0007-overflow-88",
    "event_type": "opened", "sensor_id": "waste-ams-0007", "domain": "waste", "kind": "overflow",
    "severity": "high", "status": "open", "opened_at": "2026-11-23T07:58:00Z",
    "occurred_at": "2026-11-23T07:58:00Z",
    "explanation": {"detector": "waste.overflow", "detector_version": "1.0.0", "metric": "fillingLevel",
                    "observed": 0.97, "expected": 0.9, "score": 0.97, "threshold": 0.9,
                    "summary": "Bin 97% full, above the 90% overflow threshold",
                    "contributing": [{"seq": 88, "observed_at": "2026-11-23T07:58:00Z", "metric": "fillingLevel",
                                      "value": 0.97}]}}
EXAMPLE_READING: dict[str, Any] = {
    "sensor_id": "traffic-ams-0042", "seq": 1201, "observed_at": "2026-11-23T08:00:00Z",
    "received_at": "2026-11-23T08:00:01Z", "metrics": {"intensity": 840.0, "averageVehicleSpeed": 42.5}}
EXAMPLE_SENSOR: dict[str, Any] = {
    "sensor_id": "waste-ams-0007", "domain": "waste", "location": [4.8952, 52.3702], "status": "alerting",
    "last_observed_at": "2026-11-23T08:00:00Z", "latest": {"fillingLevel": 0.97}, "recent_rejections": 0,
    "open_alerts": [EXAMPLE_ALERT]}


def example_page(item: dict[str, Any]) -> dict[str, Any]:
    return {"items": [item], "total": 1, "limit": 50, "offset": 0, "next_offset": None}


def example_response(example: Any, status: int = 200) -> dict[int, dict]:
    """`responses=` for a route: its main JSON answer with an example (merged with the response model's schema)."""
    return {status: {"content": {"application/json": {"example": example}}}}


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="Items matching the filters, over all pages.")
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last page.")


class SeriesPoint(BaseModel):
    bucket_start: datetime
    avg: float | None = None
    min: float | None = None
    max: float | None = None
    sum: float | None = None
    count: int | None = None
    last: float | None = None


class SeriesResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "sensor_id": "traffic-ams-0042", "metric": "intensity", "bucket_seconds": 300, "source": "raw",
        "start": "2026-11-23T07:00:00Z", "end": "2026-11-23T08:00:00Z", "aggregates": ["avg", "max"],
        "points": [{"bucket_start": "2026-11-23T07:00:00Z", "avg": 812.5, "max": 930.0}]}]})

    sensor_id: str
    metric: str
    bucket_seconds: int
    source: str = Field(description="`raw` (readings) or `rollups` (one-minute rollups).")
    start: datetime
    end: datetime
    aggregates: list[str]
    points: list[SeriesPoint]


class ReadingPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_READING]})

    sensor_id: str
    seq: int
    observed_at: datetime
    received_at: datetime | None = None
    metrics: dict[str, Any]


class SensorPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_SENSOR]})

    sensor_id: str
    domain: Domain | None = None
    location: tuple[float, float] | None = Field(default=None, description="GeoJSON `[longitude, latitude]`.")
    status: MapStatus
    last_observed_at: datetime | None = None
    latest: dict[str, Any] = Field(default_factory=dict, description="Metrics of the latest reading.")
    recent_rejections: int = Field(description="Readings refused in the last 15 minutes.")
    open_alerts: list[AlertEvent]


class AlertDetail(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "alert": EXAMPLE_ALERT, "history": [EXAMPLE_ALERT],
        "contributing_readings": [{"sensor_id": "waste-ams-0007", "seq": 88, "observed_at": "2026-11-23T07:58:00Z",
                                   "received_at": "2026-11-23T07:58:01Z", "metrics": {"fillingLevel": 0.97}}]}]})

    alert: AlertEvent = Field(description="Current state: the latest event of the alert.")
    history: list[AlertEvent] = Field(description="Every event of the alert, oldest first.")
    contributing_readings: list[ReadingPublic] = Field(
        description="Stored readings named in the explanation (may lag the stream by the sink's delay).")


class AlertActionRequest(BaseModel):
    """An operator command. `assign` needs `assignee`; `comment` needs `comment`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"action": "acknowledge"}, {"action": "assign", "assignee": "crew-north"},
        {"action": "comment", "comment": "Crew dispatched"}, {"action": "resolve", "comment": "Bin emptied"}]})

    action: AlertActionType
    assignee: str | None = Field(default=None, min_length=1, max_length=120)
    comment: str | None = Field(default=None, min_length=1, max_length=4000)

    @model_validator(mode="after")
    def _needs(self) -> AlertActionRequest:
        if self.action == AlertActionType.ASSIGN and not self.assignee:
            raise ValueError("assign needs an assignee")
        if self.action == AlertActionType.COMMENT and not self.comment:
            raise ValueError("comment needs a comment")
        return self


class AlertActionAccepted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "action_id": "5f0c7c9e-3a44-4b1e-9f7e-8f7f8c1d2e3a", "alert_id": "a-traffic-ams-0042-congestion-1201",
        "action": "acknowledge", "actor": "operator", "requested_at": "2026-11-23T08:01:00Z"}]})

    action_id: str
    alert_id: str
    action: AlertActionType
    actor: str
    requested_at: datetime


class AuditEntry(BaseModel):
    """One operator action as the owning service applied it."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "occurred_at": "2026-11-23T08:01:02Z", "alert_id": "a-traffic-ams-0042-congestion-1201",
        "sensor_id": "traffic-ams-0042", "domain": "traffic", "kind": "congestion", "event_type": "assigned",
        "status": "acknowledged", "actor": "ops-anna", "assignee": "crew-north", "comment": None}]})

    occurred_at: datetime
    alert_id: str
    sensor_id: str
    domain: str
    kind: str
    event_type: str
    status: str
    actor: str
    assignee: str | None = None
    comment: str | None = None


EXAMPLE_MAP: dict[str, Any] = {
    "generated_at": "2026-11-23T08:00:00Z", "unlocated": 0,
    "sensors": [["waste-ams-0007", 4.8952, 52.3702, "waste", "alerting"]]}
EXAMPLE_RECORD: dict[str, Any] = {
    "sensor_id": "waste-ams-0007", "version": 3, "status": "active", "domain": "waste",
    "owner_organisation": "Gemeente Amsterdam", "location": [4.8952, 52.3702],
    "metrics": [{"name": "fillingLevel", "unit": "fraction", "min": 0, "max": 1}], "reporting_interval_s": 300,
    "active_until": "2027-12-31T00:00:00Z", "purpose": "Empty bins before they overflow",
    "legal_ground": "public_task", "personal_data": False, "location_description": "Dam, north side",
    "description": "Ultrasonic fill-level sensor", "register_url": "https://register.example.org/map#sensor=waste-ams-0007"}


class OpsConfig(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "tile_url": "https://tiles.example.org/{z}/{x}/{y}.png", "tile_attribution": "© OpenStreetMap contributors",
        "register_url": "https://register.example.org"}]})

    tile_url: str | None = Field(description="Basemap tile URL template (`{z}/{x}/{y}`); null draws no basemap.")
    tile_attribution: str | None = Field(description="Attribution the tile provider requires.")
    register_url: str | None = Field(description="Public base URL of the sensor register.")


class OpsMap(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_MAP]})

    generated_at: datetime
    sensors: list[tuple[str, float, float, str, MapStatus]] = Field(
        description="`[sensor_id, longitude, latitude, domain, status]` of every located sensor.")
    unlocated: int = Field(description="Registered sensors without a public location (not on the map).")


class RegisterRecord(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_RECORD]})

    sensor_id: str
    version: int
    status: str
    domain: str
    owner_organisation: str
    location: tuple[float, float] | None = None
    metrics: list[dict[str, Any]] = Field(description="Declared metrics: name, unit, min, max.")
    reporting_interval_s: float
    active_until: datetime | None = None
    purpose: str | None = None
    legal_ground: str | None = None
    personal_data: bool | None = None
    location_description: str | None = None
    description: str | None = None
    register_url: str | None = Field(default=None, description="The record on the public register map.")


class LiveTicket(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"ticket": "k3Jx…", "expires_in_s": 60.0}]})

    ticket: str = Field(description="Single-use secret: pass as `?ticket=` to open one live stream.")
    expires_in_s: float = Field(description="Seconds until the ticket expires if unused.")


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "status": "ready", "checks": {"database": True, "kafka": True, "alert_stream": True, "register": True}}]})

    status: str
    checks: dict[str, bool] = Field(default_factory=dict)
