"""The topic catalogue: every CityStream topic, its payload model, its single writer and its settings.

`citystream topics create` creates topics from this list; the AsyncAPI document is generated from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

from schemas.alerts import AlertAction, AlertEvent
from schemas.common import Domain
from schemas.readings import READING_MODEL_BY_DOMAIN, RawReading
from schemas.register import SensorRegistration
from schemas.rejections import RejectedReading
from schemas.rollups import Rollup

DAY_MS = 24 * 3600 * 1000
# A replicated cluster: three copies of every partition, a write acked (acks=all) once two hold it, so one broker
# may die or restart without losing an acked reading or refusing writes.
REPLICAS = 3
MIN_IN_SYNC_REPLICAS = 2


def fit_replication(replicas: int, min_in_sync: int, brokers: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) of a topic that wants `replicas` copies on a cluster of `brokers`:
    no more copies than brokers, and min ISR at most copies − 1, so the topic stays writable with one broker down
    (a single broker: 1 and 1, the local runtime of `make run`)."""
    fitted = max(1, min(replicas, brokers))
    return fitted, max(1, min(min_in_sync, fitted - 1))


@dataclass(frozen=True)
class TopicSpec:
    name: str
    model: type[BaseModel]
    writer: str
    description: str
    partitions: int = 4
    cleanup_policy: str = "delete"
    retention_ms: int = 7 * DAY_MS
    readers: tuple[str, ...] = field(default=())
    # Services that put records they cannot process here (a dead-letter topic), besides its one writer.
    dead_letter_writers: tuple[str, ...] = field(default=())
    # Durability on a cluster of three or more brokers; a smaller cluster gets what fits (fit_replication).
    replicas: int = REPLICAS
    min_in_sync_replicas: int = MIN_IN_SYNC_REPLICAS

    @property
    def schema_id(self) -> str:
        """Value of the `schema` header, e.g. `citystream.alerts.v1`."""
        return self.name

    def config(self) -> dict[str, str]:
        settings = {"cleanup.policy": self.cleanup_policy}
        if self.cleanup_policy == "delete":
            settings["retention.ms"] = str(self.retention_ms)
        return settings

    def replication_on(self, brokers: int) -> tuple[int, int]:
        """(replication factor, min.insync.replicas) of this topic on a cluster of `brokers`."""
        return fit_replication(self.replicas, self.min_in_sync_replicas, brokers)


def readings_topic(domain: Domain | str) -> str:
    return f"citystream.readings.{Domain(domain).value}.v1"


RAW_READINGS = "citystream.readings.raw.v1"
REJECTED_READINGS = "citystream.readings.rejected.v1"
REGISTER_SENSORS = "citystream.register.sensors.v1"
ALERTS = "citystream.alerts.v1"
ALERT_ACTIONS = "citystream.alerts.actions.v1"
ROLLUPS_1M = "citystream.rollups.1m.v1"

CATALOGUE: tuple[TopicSpec, ...] = (
    TopicSpec(
        RAW_READINGS,
        RawReading,
        writer="city systems",
        # The gate alone: the `credential` header of every record travels here.
        readers=("ingest-gate",),
        description="Readings produced directly by city systems; credential in the `credential` header. "
        "The ingest gate admits or rejects every record.",
    ),
    *(
        TopicSpec(
            readings_topic(domain),
            READING_MODEL_BY_DOMAIN[domain],
            writer="ingest",
            readers=("anomaly", "ingest-sink", "integrators"),
            description=f"Admitted {domain.value} readings, in per-sensor order.",
        )
        for domain in Domain
    ),
    TopicSpec(
        REJECTED_READINGS,
        RejectedReading,
        writer="ingest",
        readers=("ingest-sink",),
        dead_letter_writers=("anomaly", "ingest-sink"),
        description="Every refused reading with its reason code, detail and payload (dead-letter topic).",
        retention_ms=30 * DAY_MS,
    ),
    TopicSpec(
        REGISTER_SENSORS,
        SensorRegistration,
        writer="register",
        readers=("ingest", "anomaly", "api"),
        description="Admission record of every sensor; compacted, so it holds the whole register.",
        partitions=1,
        cleanup_policy="compact",
    ),
    TopicSpec(
        ALERTS,
        AlertEvent,
        writer="anomaly",
        readers=("ingest-sink", "api"),
        description="Alert lifecycle events; the latest event of an alert is its state.",
        retention_ms=90 * DAY_MS,
    ),
    TopicSpec(
        ALERT_ACTIONS,
        AlertAction,
        writer="api",
        readers=("anomaly",),
        description="Operator commands on alerts, applied by the service that owns alert state.",
        retention_ms=90 * DAY_MS,
    ),
    TopicSpec(
        ROLLUPS_1M,
        Rollup,
        writer="anomaly",
        readers=("ingest-sink",),
        description="One-minute per-sensor, per-metric aggregates (count, min, max, mean, last).",
    ),
)

BY_NAME: dict[str, TopicSpec] = {spec.name: spec for spec in CATALOGUE}
