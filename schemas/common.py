"""Shared vocabulary of every CityStream message: domains, metric names, severities, identifiers."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

SENSOR_ID_PATTERN = r"^[a-z0-9][a-z0-9._:-]{2,79}$"

SensorId = Annotated[
    str,
    Field(
        pattern=SENSOR_ID_PATTERN,
        description="Stable sensor identifier, lower-case, e.g. `traffic-ams-0042`. The Kafka key of every record.",
        examples=["traffic-ams-0042"],
    ),
]


def _require_timezone(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a timezone offset, e.g. 2026-11-23T08:00:00Z")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_require_timezone)]


class Domain(StrEnum):
    TRAFFIC = "traffic"
    ENERGY = "energy"
    WASTE = "waste"


# Metric names follow FIWARE Smart Data Models so integrators recognise them:
# traffic = TrafficFlowObserved, energy = ACMeasurement, waste = WasteContainer.
METRICS_BY_DOMAIN: dict[Domain, tuple[str, ...]] = {
    Domain.TRAFFIC: ("intensity", "occupancy", "averageVehicleSpeed"),
    Domain.ENERGY: ("activePower", "totalActiveEnergyImport", "voltage", "current", "powerFactor"),
    Domain.WASTE: ("fillingLevel", "temperature", "cargoWeight", "methaneConcentration"),
}


class Severity(StrEnum):
    """Smart Data Models `Alert.severity` scale, least to most urgent."""

    INFORMATIONAL = "informational"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class WireModel(BaseModel):
    """Base of every message on a shared topic.

    Consumers ignore fields they do not know, so a producer may add optional fields within a major version
    without breaking anyone. Every float is finite: NaN and ±Infinity are not JSON, and a consumer in another
    language could not read them back.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, allow_inf_nan=False)
