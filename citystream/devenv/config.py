"""Where the local runtime keeps its cache and state, how many Kafka brokers it runs, and which ports they use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
# Written when the brokers' storage is formatted: the cluster id and how many brokers share it.
CLUSTER_RECORD = Path("kafka") / "cluster.json"


def recorded_brokers(state_dir: Path) -> int | None:
    """How many brokers the runtime in `state_dir` was formatted for (None: none formatted yet, or a runtime from
    before clusters existed, which has one)."""
    try:
        return int(json.loads((state_dir / CLUSTER_RECORD).read_text())["brokers"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class NodePorts(NamedTuple):
    """The loopback ports of one Kafka node (broker and controller in one process)."""

    client: int  # SASL_PLAINTEXT (or PLAINTEXT with auth off)
    controller: int
    anonymous: int


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
    kafka_brokers: int = Field(
        default=1, ge=1, le=5,
        description="Kafka nodes (each broker and controller): 1 for `make run` and `make test`; 3 for a "
        "replicated cluster (topics with 3 replicas, min.insync.replicas 2, a controller quorum that survives one node). "
        "Unset, it is what the runtime's storage was formatted for.")
    kafka_node_port_step: int = Field(
        default=10, ge=3, description="Node n listens on each of the three Kafka ports + (n - 1) × this step.")
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

    @model_validator(mode="before")
    @classmethod
    def _remembered_brokers(cls, data: Any) -> Any:
        # The runtime remembers its size, so `dev env`, `dev status`, `dev down` and every DevSettings() built by
        # the tests or the benchmark find all of its brokers without being told `--brokers` again.
        if isinstance(data, dict) and data.get("kafka_brokers") is None:
            state_dir = Path(data.get("state_dir") or cls.model_fields["state_dir"].default)
            recorded = recorded_brokers(state_dir)
            if recorded is not None:
                data = {**data, "kafka_brokers": recorded}
        return data

    @property
    def kafka_nodes(self) -> range:
        """Node ids 1..kafka_brokers (node 1 is the single-node runtime's broker: its ports and directories)."""
        return range(1, self.kafka_brokers + 1)

    def node_ports(self, node: int) -> NodePorts:
        offset = (node - 1) * self.kafka_node_port_step
        return NodePorts(self.kafka_port + offset, self.kafka_controller_port + offset,
                         self.kafka_anonymous_port + offset)

    @property
    def kafka_bootstrap(self) -> str:
        """Every broker: a client that finds its first bootstrap address dead tries the next."""
        return ",".join(f"127.0.0.1:{self.node_ports(node).client}" for node in self.kafka_nodes)

    @property
    def kafka_anonymous_bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.node_ports(node).anonymous}" for node in self.kafka_nodes)

    @property
    def database_url(self) -> str:
        return (
            f"postgresql://{self.postgres_user}:{self.postgres_password}"
            f"@127.0.0.1:{self.postgres_port}/{self.postgres_db}"
        )

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"
