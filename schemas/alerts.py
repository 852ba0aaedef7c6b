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
    seq: int = Field(description="The reading's per-sensor sequence number.")
    observed_at: AwareDatetime = Field(description="When the sensor observed it (sensor clock).")
    metric: str = Field(description="Smart Data Models metric name, e.g. `averageVehicleSpeed`.")
    value: float = Field(description="The value read, in the unit the register declares for the metric.")


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
    likelihood: float | None = Field(default=None, ge=0, le=1, description=(
        "Calibrated detectors only: how unusual the recent scores are against this series' own history "
        "(anomaly likelihood, 1 - tail probability); `score` is its log-scaled form."))
    raw_score: float | None = Field(default=None, ge=0, le=1, description=(
        "Calibrated detectors only: the uncalibrated score of the reading, 0 (as expected) to 1."))
    expected_low: float | None = Field(default=None, description="Low edge of the usual band, if there is one.")
    expected_high: float | None = Field(default=None, description="High edge of the usual band, if it has one.")


class AlertEvent(WireModel):
    """One change in an alert's life. The latest event of an `alert_id` is its current state."""

    event_id: str = Field(description="Deterministic id of this event: reprocessing yields the same id.")
    alert_id: str = Field(description="Deterministic id: one per (sensor, kind, opening reading).")
    event_type: AlertEventType = Field(description="What happened to the alert in this event.")
    sensor_id: SensorId
    domain: Domain = Field(description="The sensor's domain.")
    kind: AlertKind = Field(description="What kind of anomaly; at most one open alert per (sensor, kind).")
    severity: Severity = Field(description="Smart Data Models severity, informational to critical.")
    status: AlertStatus = Field(description="The alert's status after this event.")
    opened_at: AwareDatetime = Field(description="When the alert opened (time of the opening reading).")
    occurred_at: AwareDatetime = Field(description="When this event happened (reading time for detections).")
    explanation: Explanation = Field(description="Why the alert fired (the latest detection's numbers).")
    actor: str | None = Field(default=None, description="Operator who acted, for operator events.")
    assignee: str | None = Field(default=None, description="Operator the alert is assigned to, if any.")
    comment: str | None = Field(default=None, description="The operator's comment, for `commented` events.")
    resolved_at: AwareDatetime | None = Field(default=None, description="When it was resolved, once resolved.")


class AlertActionType(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    ASSIGN = "assign"
    COMMENT = "comment"
    RESOLVE = "resolve"


class AlertAction(WireModel):
    """An operator's command, keyed by sensor id so it lands on the partition that owns the alert."""

    action_id: str = Field(description="Unique id of the command (UUID); applying it twice has no extra effect.")
    alert_id: str = Field(description="The alert acted on (`AlertEvent.alert_id`).")
    sensor_id: SensorId
    action: AlertActionType = Field(description="What the operator asks for.")
    actor: str = Field(min_length=1, max_length=120, description="The operator who asked (from their token).")
    assignee: str | None = Field(default=None, max_length=120, description="Who to assign to, for `assign`.")
    comment: str | None = Field(default=None, max_length=4000, description="Free text, for `comment` and `resolve`.")
    requested_at: AwareDatetime = Field(description="When the operator asked (API clock).")
