"""CityStream contracts: one pydantic model per message. JSON Schema and AsyncAPI are generated from these."""

from schemas.alerts import (
    AlertAction,
    AlertActionType,
    AlertEvent,
    AlertEventType,
    AlertKind,
    AlertStatus,
    ContributingReading,
    Explanation,
)
from schemas.common import METRICS_BY_DOMAIN, Domain, Severity
from schemas.readings import (
    READING_MODEL_BY_DOMAIN,
    AdmittedReadingBase,
    EnergyReading,
    RawReading,
    TrafficReading,
    WasteReading,
)
from schemas.register import CredentialHash, CredentialKind, MetricDeclaration, SensorRegistration, SensorStatus
from schemas.rejections import HTTP_STATUS, RejectedReading, RejectionReason
from schemas.rollups import Rollup

__all__ = [
    "HTTP_STATUS",
    "METRICS_BY_DOMAIN",
    "READING_MODEL_BY_DOMAIN",
    "AdmittedReadingBase",
    "AlertAction",
    "AlertActionType",
    "AlertEvent",
    "AlertEventType",
    "AlertKind",
    "AlertStatus",
    "ContributingReading",
    "CredentialHash",
    "CredentialKind",
    "Domain",
    "EnergyReading",
    "Explanation",
    "MetricDeclaration",
    "RawReading",
    "RejectedReading",
    "RejectionReason",
    "Rollup",
    "SensorRegistration",
    "SensorStatus",
    "Severity",
    "TrafficReading",
    "WasteReading",
]
