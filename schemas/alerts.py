"""Alert events on `citystream.alerts.v1` and operator commands on `citystream.alerts.actions.v1`."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from schemas.common import AwareDatetime, Domain, SensorId, Severity, WireModel


class AlertKind(StrEnum):
    CONGESTION = "congestion"
    INCIDENT = "incident"
    ENERGY_SPIKE = "energy_spike"
    ENERGY_OUTAGE = "energy_outage"
    ENERGY_DRIFT = "energy_drift"
    OVERFLOW = "overflow"
    ABNORMAL_FILL_RATE = "abnormal_fill_rate"
    FIRE_RISK = "fire_risk"
    MISSED_COLLECTION = "missed_collection"
    SILENCE = "silence"
    STUCK_SENSOR = "stuck_sensor"
    OUT_OF_RANGE = "out_of_range"
    ANOMALOUS_VALUE = "anomalous_value"
    RAPID_CHANGE = "rapid_change"


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class AlertEventType(StrEnum):
    OPENED = "opened"
    UPDATED = "updated"
    ACKNOWLEDGED = "acknowledged"
    ASSIGNED = "assigned"
    COMMENTED = "commented"
    RESOLVED = "resolved"


class ContributingReading(WireModel):
    seq: int
    observed_at: AwareDatetime
    metric: str
    value: float


class Explanation(WireModel):
    """Why the alert fired, in numbers an operator can check."""

    detector: str = Field(description="Detector id, e.g. `traffic.congestion`.")
    detector_version: str = Field(description="Detector version, e.g. `1.0.0`.")
    metric: str = Field(description="The metric that was judged.")
    observed: float = Field(description="The value observed.")
    expected: float | None = Field(default=None, description="The baseline or expected value.")
    score: float = Field(description="How anomalous, in the detector's own scale (see `threshold`).")
    threshold: float = Field(description="Score at which the detector fires.")
    summary: str = Field(description="One sentence for the operator.")
    contributing: tuple[ContributingReading, ...] = Field(default=(), description="Readings that led to it.")


class AlertEvent(WireModel):
    """One change in an alert's life. The latest event of an `alert_id` is its current state."""

    event_id: str = Field(description="Deterministic id of this event: reprocessing yields the same id.")
    alert_id: str = Field(description="Deterministic id: one per (sensor, kind, opening reading).")
    event_type: AlertEventType
    sensor_id: SensorId
    domain: Domain
    kind: AlertKind
    severity: Severity
    status: AlertStatus
    opened_at: AwareDatetime
    occurred_at: AwareDatetime = Field(description="When this event happened (reading time for detections).")
    explanation: Explanation
    actor: str | None = Field(default=None, description="Operator who acted, for operator events.")
    assignee: str | None = None
    comment: str | None = None
    resolved_at: AwareDatetime | None = None


class AlertActionType(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    ASSIGN = "assign"
    COMMENT = "comment"
    RESOLVE = "resolve"


class AlertAction(WireModel):
    """An operator's command, keyed by sensor id so it lands on the partition that owns the alert."""

    action_id: str = Field(description="Unique id of the command (UUID); applying it twice has no extra effect.")
    alert_id: str
    sensor_id: SensorId
    action: AlertActionType
    actor: str = Field(min_length=1, max_length=120)
    assignee: str | None = Field(default=None, max_length=120)
    comment: str | None = Field(default=None, max_length=4000)
    requested_at: AwareDatetime
