"""Readings: what a sensor sends (raw) and what the gate admits to `citystream.readings.<domain>.v1`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.common import AwareDatetime, Domain, SensorId, WireModel

Seq = Field(
    ge=0,
    le=2**63 - 1,
    description="Per-sensor sequence number: the idempotency and loss-accounting key. A retry reuses it.",
)


class RawReading(BaseModel):
    """One reading as a sensor or city system sends it, before the gate.

    Used in the HTTP batch body and as the value on `citystream.readings.raw.v1`. Unknown fields are refused
    (mass assignment): `received_at`, `domain` and `register_version` are set by the gate, never by a sender.
    Metric values are finite numbers: NaN and ±Infinity are refused.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    sensor_id: SensorId | None = Field(
        default=None,
        description="Sensor the reading is for. Optional over HTTP (taken from the credential); must match it.",
    )
    seq: int = Seq
    observed_at: AwareDatetime = Field(description="When the sensor measured, by its own clock, with offset.")
    metrics: dict[str, float] = Field(
        min_length=1,
        max_length=16,
        description="Metric name (Smart Data Models) to value, in the unit declared in the register.",
        examples=[{"intensity": 14.0, "averageVehicleSpeed": 41.5}],
    )


class AdmittedReadingBase(WireModel):
    sensor_id: SensorId
    seq: int = Seq
    observed_at: AwareDatetime = Field(description="Sensor clock, timezone-aware.")
    received_at: AwareDatetime = Field(description="Ingest clock when the gate admitted the reading.")
    register_version: int = Field(ge=1, description="Version of the sensor's register record that admitted it.")


class TrafficMetrics(WireModel):
    """TrafficFlowObserved attributes."""

    intensity: float | None = Field(default=None, description="Vehicles counted in the reporting interval.")
    occupancy: float | None = Field(default=None, description="Fraction of time the loop was occupied, 0..1.")
    averageVehicleSpeed: float | None = Field(default=None, description="Mean speed in km/h.")


class EnergyMetrics(WireModel):
    """ACMeasurement attributes."""

    activePower: float | None = Field(default=None, description="Active power, unit per register (kW).")
    totalActiveEnergyImport: float | None = Field(default=None, description="Meter reading (kWh).")
    voltage: float | None = Field(default=None, description="Voltage (V).")
    current: float | None = Field(default=None, description="Current (A).")
    powerFactor: float | None = Field(default=None, description="Power factor, -1..1.")


class WasteMetrics(WireModel):
    """WasteContainer attributes."""

    fillingLevel: float | None = Field(default=None, description="Fill level as a fraction, 0..1.")
    temperature: float | None = Field(default=None, description="Temperature inside the container (°C).")
    cargoWeight: float | None = Field(default=None, description="Weight of the content (kg).")
    methaneConcentration: float | None = Field(default=None, description="Methane concentration (ppm).")


class TrafficReading(AdmittedReadingBase):
    """An admitted traffic reading on `citystream.readings.traffic.v1`."""

    domain: Literal[Domain.TRAFFIC] = Field(default=Domain.TRAFFIC, description="Always `traffic` on this topic.")
    metrics: TrafficMetrics = Field(description="The admitted values; only metrics the register declares for the sensor.")


class EnergyReading(AdmittedReadingBase):
    """An admitted energy reading on `citystream.readings.energy.v1`."""

    domain: Literal[Domain.ENERGY] = Field(default=Domain.ENERGY, description="Always `energy` on this topic.")
    metrics: EnergyMetrics = Field(description="The admitted values; only metrics the register declares for the sensor.")


class WasteReading(AdmittedReadingBase):
    """An admitted waste reading on `citystream.readings.waste.v1`."""

    domain: Literal[Domain.WASTE] = Field(default=Domain.WASTE, description="Always `waste` on this topic.")
    metrics: WasteMetrics = Field(description="The admitted values; only metrics the register declares for the sensor.")


READING_MODEL_BY_DOMAIN: dict[Domain, type[AdmittedReadingBase]] = {
    Domain.TRAFFIC: TrafficReading,
    Domain.ENERGY: EnergyReading,
    Domain.WASTE: WasteReading,
}
