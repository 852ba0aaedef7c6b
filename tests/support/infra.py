"""Finds the Kafka broker and TimescaleDB the tests talk to: env vars, else testcontainers, else the local runtime."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

from pydantic import SecretStr

from services.common.settings import KafkaAccess

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Infrastructure:
    kafka: KafkaAccess  # as the broker's admin (super user): tests create topics, principals and ACLs
    admin_database_url: str
    origin: str
    # A listener without authentication on the same broker, when it has one (the local runtime's).
    anonymous_bootstrap: str | None = None

    @property
    def kafka_bootstrap(self) -> str:
        return self.kafka.bootstrap


def _docker_engine_answers() -> bool:
    if not os.environ.get("DOCKER_HOST") and not os.path.exists("/var/run/docker.sock"):
        return False
    import docker

    try:
        client = docker.from_env(timeout=2)
    except Exception:  # no client config or no socket: no engine here
        return False
    try:
        return bool(client.ping())
    except Exception:  # socket there, daemon not answering
        return False
    finally:
        client.close()


KAFKA_IMAGE = "apache/kafka:4.1.1"  # the broker version the local runtime runs (deploy/local/kafka/pom.xml)
TIMESCALEDB_IMAGE = "timescale/timescaledb:2.19.3-pg15"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# The container's broker and admin passwords (development secrets: the container lives for one test session).
CONTAINER_BROKER_PASSWORD = "citystream-dev-broker"
CONTAINER_ADMIN_PASSWORD = "citystream-dev-admin"


def _container_variable(name: str) -> str:
    """The `apache/kafka` image's environment name of a broker property ("-" -> "___", "_" -> "__", "." -> "_")."""
    return "KAFKA_" + name.replace("_", "__").replace("-", "___").replace(".", "_").upper()


def kafka_container_environment(host_port: int) -> dict[str, str]:
    """Single-node KRaft settings for the official `apache/kafka` image, advertised on a fixed host port, with
    the local runtime's security: SASL (PLAIN for the broker and the admin, SCRAM for everyone else), the
    StandardAuthorizer, deny when no ACL matches.

    testcontainers' own KafkaContainer drives Confluent's image (its start script and version checks refuse
    `apache/kafka`), so the container is configured here the way docker-compose.yml configures it."""
    from citystream.devenv.principals import security_properties

    security = security_properties(CONTAINER_BROKER_PASSWORD, CONTAINER_ADMIN_PASSWORD)
    return {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": "SASL_PLAINTEXT://:9092,CONTROLLER://:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"SASL_PLAINTEXT://127.0.0.1:{host_port}",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        **{_container_variable(key): value for key, value in security.items()},
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",  # as the local runtime: only catalogue and Faust topics
    }


def _from_testcontainers() -> tuple[Infrastructure, list]:
    from testcontainers.community.postgres import PostgresContainer
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    host_port = _free_port()
    kafka = (
        DockerContainer(KAFKA_IMAGE)
        .with_envs(**kafka_container_environment(host_port))
        .with_bind_ports(9092, host_port)
        .waiting_for(LogMessageWaitStrategy("Kafka Server started"))
    )
    postgres = PostgresContainer(TIMESCALEDB_IMAGE, username="citystream", password="citystream",
                                 dbname="citystream", driver=None)
    kafka.start()
    try:
        postgres.start()
    except Exception:
        kafka.stop()
        raise
    admin = KafkaAccess(f"127.0.0.1:{host_port}", "SASL_PLAINTEXT", "PLAIN", "citystream-admin",
                        SecretStr(CONTAINER_ADMIN_PASSWORD))
    return Infrastructure(admin, postgres.get_connection_url(), "testcontainers"), [kafka, postgres]


def _from_local_runtime() -> Infrastructure:
    from citystream.devenv import kafka, postgres, principals
    from citystream.devenv.config import DevSettings

    settings = DevSettings()
    # Starting is idempotent and quick when already up (`make test` starts it before pytest).
    kafka.start(settings)
    postgres.start(settings)
    anonymous = settings.kafka_anonymous_bootstrap if settings.kafka_auth else None
    return Infrastructure(principals.admin_access(settings), settings.database_url, "local runtime", anonymous)


def resolve() -> tuple[Infrastructure, list]:
    """The infrastructure for this test session and any containers to stop afterwards."""
    kafka_env = os.environ.get("CITYSTREAM_TEST_KAFKA_BOOTSTRAP")
    database_env = os.environ.get("CITYSTREAM_TEST_DATABASE_URL")
    if kafka_env and database_env:
        # A broker with authentication needs its admin's credentials too (CITYSTREAM_TEST_KAFKA_USERNAME, ...).
        admin = KafkaAccess(
            kafka_env, os.environ.get("CITYSTREAM_TEST_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT"),
            os.environ.get("CITYSTREAM_TEST_KAFKA_SASL_MECHANISM", "PLAIN"),
            os.environ.get("CITYSTREAM_TEST_KAFKA_USERNAME", ""),
            SecretStr(os.environ.get("CITYSTREAM_TEST_KAFKA_PASSWORD", "")))
        anonymous = os.environ.get("CITYSTREAM_TEST_KAFKA_ANONYMOUS_BOOTSTRAP")
        return Infrastructure(admin, database_env, "environment", anonymous), []
    if _docker_engine_answers():
        return _from_testcontainers()
    return _from_local_runtime(), []
