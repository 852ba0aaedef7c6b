"""Where the local runtime keeps its cache and state, and which ports it uses."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]


class DevSettings(BaseSettings):
    """Built once by the CLI from CITYSTREAM_DEV_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="CITYSTREAM_DEV_", frozen=True, extra="ignore")

    cache_dir: Path = Field(
        default=Path.home() / ".cache" / "citystream",
        description="Downloads and builds reused across clones: Kafka jars, the TimescaleDB build.",
    )
    state_dir: Path = Field(default=REPO_ROOT / ".citystream", description="Data, logs and pid files.")
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    kafka_anonymous_port: int = Field(
        default=19094, description="A PLAINTEXT listener whose clients are User:ANONYMOUS, granted nothing: shows "
        "what an unauthenticated client gets (refusals) and lets `make bench` measure the cost of SASL.")
    kafka_heap_mb: int = 768
    kafka_auth: bool = Field(default=True, description="SASL/SCRAM, the StandardAuthorizer and the catalogue's ACLs "
                             "(off: one PLAINTEXT listener that lets anyone do anything).")
    postgres_port: int = 15432
    postgres_user: str = "citystream"
    postgres_password: str = "citystream"
    postgres_db: str = "citystream"
    start_timeout_s: float = 60.0
    maven_repository: str = Field(
        default="", description="Where Kafka's jars come from; empty: the repositories Maven itself is configured "
        "with (~/.m2/settings.xml, else its built-in default).")
    debian_mirror: str = Field(
        default="", description="Where TimescaleDB's Debian source package comes from; empty: the Debian archive "
        "apt's own sources name (/etc/apt/sources.list, /etc/apt/sources.list.d/).")
    download_timeout_s: float = Field(default=900.0, description="Upper bound for one download once it is flowing.")
    prometheus_port: int = 9090
    grafana_port: int = 3000

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def kafka_anonymous_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_anonymous_port}"

    @property
    def database_url(self) -> str:
        return (
            f"postgresql://{self.postgres_user}:{self.postgres_password}"
            f"@127.0.0.1:{self.postgres_port}/{self.postgres_db}"
        )

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"
