"""Settings of the anomaly worker (CITYSTREAM_ANOMALY_* plus the common CITYSTREAM_* env), built once in the
entrypoint."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from schemas.access import ANOMALY_APP_ID
from services.common.event_loop import default_event_loop, imports
from services.common.settings import CommonSettings


class AnomalySettings(CommonSettings):
    # populate_by_name: tests and entrypoints may also pass fields by name.
    model_config = SettingsConfigDict(env_prefix="CITYSTREAM_", frozen=True, extra="ignore", populate_by_name=True)

    app_id: str = Field(default=ANOMALY_APP_ID, validation_alias="CITYSTREAM_ANOMALY_APP_ID",
                        description="Faust app id = consumer group + changelog topic prefix.")
    web_port: int = Field(default=8085, ge=1, le=65535, validation_alias="CITYSTREAM_ANOMALY_WEB_PORT")
    web_host: str = Field(default="127.0.0.1", validation_alias="CITYSTREAM_ANOMALY_WEB_HOST")
    store: str = Field(default="", validation_alias="CITYSTREAM_ANOMALY_STORE",
                       description="Faust table store URL; empty = rocksdb:// if rocksdict imports, else memory://")
    data_dir: Path = Field(default=Path(".citystream/anomaly"), validation_alias="CITYSTREAM_ANOMALY_DATA_DIR",
                           description="Parent of the worker's data directory (<data_dir>/<app_id>-data: "
                                       "RocksDB tables); relative = to the working directory.")
    tick_interval_s: float = Field(default=5.0, gt=0, validation_alias="CITYSTREAM_ANOMALY_TICK_INTERVAL_S",
                                   description="How often the timer looks for silence and quiet rollup windows.")
    silence_k: float = Field(default=3.0, gt=1, validation_alias="CITYSTREAM_ANOMALY_SILENCE_K",
                             description="Silent after k × the sensor's usual interval.")
    session_timeout_s: float = Field(
        default=15.0, ge=6, le=300, validation_alias="CITYSTREAM_ANOMALY_SESSION_TIMEOUT_S",
        description="How long the group waits for a silent worker before its partitions move (a kill -9 stalls "
                    "them this long). Faust's 60 s default is slow failover; below ~6 s a GC pause evicts workers.")
    standby_replicas: int = Field(
        default=1, ge=0, le=3, validation_alias="CITYSTREAM_ANOMALY_STANDBY_REPLICAS",
        description="Standby copies of each table partition kept warm on other workers (Faust's "
                    "table_standby_replicas): a worker taking over a partition then replays only the changelog's "
                    "tail. With one worker no standby is placed (never on the partition's own worker); 0 turns "
                    "them off.")
    resolve_after_s: float = Field(default=600.0, ge=0, validation_alias="CITYSTREAM_ANOMALY_RESOLVE_AFTER_S",
                                   description="Auto-resolve after the signal is back to normal this long.")
    batch_max: int = Field(default=5000, ge=1, le=20_000, validation_alias="CITYSTREAM_ANOMALY_BATCH_MAX",
                           description="Most readings the readings loop fetches and judges per batch (and most "
                                       "ticks or actions an agent takes per batch).")
    batch_within_s: float = Field(
        default=0.05, gt=0, le=5, validation_alias="CITYSTREAM_ANOMALY_BATCH_WITHIN_S",
        description="Longest a fetch waits for its batch to fill: the latency a quiet stream pays per reading.")
    flush_interval_s: float = Field(
        default=1.0, gt=0, le=10, validation_alias="CITYSTREAM_ANOMALY_FLUSH_INTERVAL_S",
        description="How often changed sensor states are written to the changelog tables (once per sensor), after "
                    "which the readings judged meanwhile are acked for commit.")
    lag_interval_s: float = Field(
        default=2.0, gt=0, le=60, validation_alias="CITYSTREAM_ANOMALY_LAG_INTERVAL_S",
        description="How often citystream_anomaly_consumer_lag_records is updated (one ListOffsets request).")
    producer_linger_s: float = Field(default=0.005, ge=0, le=1, validation_alias="CITYSTREAM_ANOMALY_PRODUCER_LINGER_S",
                                     description="Linger of the worker's producer (outputs and changelog records "
                                                 "are appended to per-partition batches already).")

    event_loop: str = Field(
        default="", pattern="^(|uvloop|asyncio)$", validation_alias="CITYSTREAM_ANOMALY_EVENT_LOOP",
        description="Event loop of the worker: uvloop or asyncio; empty = uvloop if it imports, else asyncio. "
                    "Faust's per-message path is mostly event-loop work (a task pair per message).")

    def loop(self) -> str:
        return self.event_loop or default_event_loop()

    def table_store(self) -> str:
        return self.store or ("rocksdb://" if imports("rocksdict") else "memory://")

    @property
    def datadir(self) -> Path:
        return self.data_dir / f"{self.app_id}-data"

