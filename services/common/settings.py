"""Settings shared by every service. Each entrypoint builds its frozen settings object once, from CITYSTREAM_* env."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """What every CityStream process needs. Services subclass it with their own fields."""

    model_config = SettingsConfigDict(env_prefix="CITYSTREAM_", frozen=True, extra="ignore")

    kafka_bootstrap: str = Field(default="127.0.0.1:19092", description="Kafka bootstrap servers, comma-separated.")
    database_url: str = Field(
        default="postgresql://citystream:citystream@127.0.0.1:15432/citystream",
        description="asyncpg DSN of the TimescaleDB database.",
    )
    topic_prefix: str = Field(
        default="",
        description="Prepended to every topic name; lets tests and parallel deployments share a broker.",
    )
    env: Literal["development", "production"] = Field(
        default="development",
        description="CITYSTREAM_ENV. `production`: the service refuses to start on any development token, password "
                    "or secret (services/common/production.py); `development` lets `make run` work unconfigured.",
    )
    log_level: str = Field(default="INFO")
    instance_id: str = Field(default="", description="Names this process in `produced-by` headers and metrics.")

    def topic(self, name: str) -> str:
        """The deployed name of catalogue topic `name`."""
        return f"{self.topic_prefix}{name}"
