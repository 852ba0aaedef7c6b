"""Ingest settings (CITYSTREAM_INGEST_* plus the common CITYSTREAM_* ones), built once per entrypoint."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from schemas.access import GATE_APP_ID, SINK_GROUP_ID
from services.common.settings import CommonSettings


class IngestSettings(CommonSettings):
    """Limits of the gate, the HTTP endpoint and the sink. Defaults suit the local runtime."""

    # populate_by_name: tests and entrypoints may also pass fields by name.
    model_config = SettingsConfigDict(env_prefix="CITYSTREAM_", frozen=True, extra="ignore", populate_by_name=True)

    http_port: int = Field(default=8082, validation_alias="CITYSTREAM_INGEST_HTTP_PORT")
    gate_port: int = Field(default=8083, validation_alias="CITYSTREAM_INGEST_GATE_PORT")
    sink_port: int = Field(default=8084, validation_alias="CITYSTREAM_INGEST_SINK_PORT")
    # Scale-out on one host: every ingest-http process started with this binds the same port (SO_REUSEPORT).
    http_reuse_port: bool = Field(default=False, validation_alias="CITYSTREAM_INGEST_HTTP_REUSE_PORT")
    # Several ingest-http processes (or pods) serving the same sensors: their per-sensor rate limits lease tokens from
    # one bucket per sensor in PostgreSQL (CITYSTREAM_DATABASE_URL), so a sensor gets one quota, not one per process
    # (services/ingest/leases.py). Off for a single process: its own buckets are exact and cost no database trip.
    http_shared_quota: bool = Field(default=False, validation_alias="CITYSTREAM_INGEST_HTTP_SHARED_QUOTA")
    # A lease not answered within this is a 503 with Retry-After for the batch that needed it, never an admission.
    quota_lease_timeout_s: float = Field(default=1.0, gt=0, validation_alias="CITYSTREAM_INGEST_QUOTA_LEASE_TIMEOUT_S")
    max_batch_readings: int = Field(default=10_000, ge=1, validation_alias="CITYSTREAM_INGEST_MAX_BATCH_READINGS")
    # 10,000 readings of ~200 bytes each fit with room to spare; anything bigger is refused while streaming.
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, validation_alias="CITYSTREAM_INGEST_MAX_BODY_BYTES")
    clock_skew_s: float = Field(default=300.0, ge=0, validation_alias="CITYSTREAM_INGEST_CLOCK_SKEW_S")
    max_age_s: float = Field(default=7 * 24 * 3600.0, gt=0, validation_alias="CITYSTREAM_INGEST_MAX_AGE_S")
    ack_timeout_s: float = Field(default=2.5, gt=0, validation_alias="CITYSTREAM_INGEST_ACK_TIMEOUT_S")
    # Readiness: the broker is asked for metadata this often; no answer within the timeout means "Kafka down".
    kafka_check_s: float = Field(default=1.0, gt=0, validation_alias="CITYSTREAM_INGEST_KAFKA_CHECK_S")
    kafka_check_timeout_s: float = Field(default=1.5, gt=0, validation_alias="CITYSTREAM_INGEST_KAFKA_CHECK_TIMEOUT_S")
    retry_after_s: int = Field(default=5, ge=1, validation_alias="CITYSTREAM_INGEST_RETRY_AFTER_S")
    # Requests whose credential fails, per client address: a burst, then this many per minute; more get 429.
    auth_failures_per_minute: int = Field(default=60, ge=1,
                                          validation_alias="CITYSTREAM_INGEST_AUTH_FAILURES_PER_MINUTE")
    auth_failures_burst: int = Field(default=30, ge=1, validation_alias="CITYSTREAM_INGEST_AUTH_FAILURES_BURST")
    # Records per database transaction (one COPY per table): under load the sink's batches fill to this cap.
    sink_batch_max: int = Field(default=10_000, ge=1, validation_alias="CITYSTREAM_INGEST_SINK_BATCH_MAX")
    sink_backoff_max_s: float = Field(default=10.0, gt=0, validation_alias="CITYSTREAM_INGEST_SINK_BACKOFF_MAX_S")
    # Readiness: the sink probes the database at start and whenever it has not touched it for this long.
    sink_db_probe_s: float = Field(default=5.0, gt=0, validation_alias="CITYSTREAM_INGEST_SINK_DB_PROBE_S")
    sink_db_probe_timeout_s: float = Field(default=3.0, gt=0,
                                           validation_alias="CITYSTREAM_INGEST_SINK_DB_PROBE_TIMEOUT_S")
    sink_group_id: str = Field(default=SINK_GROUP_ID, validation_alias="CITYSTREAM_INGEST_SINK_GROUP_ID")
    # The gate's and the sink's consumer groups drop a member that has sent no heartbeat for this long and hand its
    # partitions to the others: a killed member's partitions stall this long. aiokafka's heartbeats run in the event
    # loop, so a member whose loop is blocked longer (a long GC pause, a starved core) is dropped too. 10 s is
    # aiokafka's default; 6 s is the broker's floor (group.min.session.timeout.ms).
    consumer_session_timeout_s: float = Field(default=10.0, ge=6, le=300,
                                              validation_alias="CITYSTREAM_INGEST_CONSUMER_SESSION_TIMEOUT_S")
    gate_app_id: str = Field(default=GATE_APP_ID, validation_alias="CITYSTREAM_INGEST_GATE_APP_ID")
    gate_data_dir: str = Field(default="/tmp/citystream-ingest-gate", validation_alias="CITYSTREAM_INGEST_GATE_DATA_DIR")

    @property
    def consumer_group_timing(self) -> dict[str, int]:
        """aiokafka options for the gate's and the sink's group consumers: the session timeout, and a heartbeat every
        3/10 of it (aiokafka's own 3 s of 10 s: three chances before the member is dropped)."""
        session_ms = round(self.consumer_session_timeout_s * 1000)
        return {"session_timeout_ms": session_ms, "heartbeat_interval_ms": session_ms * 3 // 10}

    @property
    def produced_by(self) -> str:
        return f"ingest{'-' + self.instance_id if self.instance_id else ''}"
