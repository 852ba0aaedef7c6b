"""Settings of the anomaly worker (CITYSTREAM_* env), built once in the entrypoint."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import CommonSettings


class AnomalySettings(CommonSettings):
    app_id: str = Field(default="citystream-anomaly", description="Faust app id = consumer group + changelog prefix.")
    web_port: int = Field(default=8085, ge=1, le=65535)
    web_host: str = Field(default="127.0.0.1")
    store: str = Field(default="", description="Faust table store URL; empty = rocksdb:// if importable else memory://")
    tick_interval_s: float = Field(default=5.0, gt=0, description="How often the timer looks for silence/rollups.")
    silence_k: float = Field(default=3.0, gt=1, description="Silent after k × the sensor's usual interval.")
    resolve_after_s: float = Field(default=600.0, ge=0, description="Auto-resolve after this long back to normal.")

    def table_store(self) -> str:
        if self.store:
            return self.store
        try:
            import rocksdict  # noqa: F401
        except ImportError:
            return "memory://"
        return "rocksdb://"
