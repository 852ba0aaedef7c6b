"""Finds the Kafka broker and TimescaleDB the tests talk to: env vars, else testcontainers, else the local runtime."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Infrastructure:
    kafka_bootstrap: str
    admin_database_url: str
    origin: str


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


def _from_testcontainers() -> tuple[Infrastructure, list]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    kafka = KafkaContainer("apache/kafka:4.1.1").with_kraft()
    postgres = PostgresContainer("timescale/timescaledb:2.19.3-pg15", username="citystream", password="citystream",
                                 dbname="citystream")
    kafka.start()
    postgres.start()
    url = postgres.get_connection_url().replace("postgresql+psycopg2://", "postgresql://")
    return Infrastructure(kafka.get_bootstrap_server(), url, "testcontainers"), [kafka, postgres]


def _from_local_runtime() -> Infrastructure:
    from citystream.devenv import kafka, postgres
    from citystream.devenv.config import DevSettings

    settings = DevSettings()
    # Starting is idempotent and quick when already up (`make test` starts it before pytest).
    kafka.start(settings)
    postgres.start(settings)
    return Infrastructure(settings.kafka_bootstrap, settings.database_url, "local runtime")


def resolve() -> tuple[Infrastructure, list]:
    """The infrastructure for this test session and any containers to stop afterwards."""
    kafka_env = os.environ.get("CITYSTREAM_TEST_KAFKA_BOOTSTRAP")
    database_env = os.environ.get("CITYSTREAM_TEST_DATABASE_URL")
    if kafka_env and database_env:
        return Infrastructure(kafka_env, database_env, "environment"), []
    if _docker_engine_answers():
        return _from_testcontainers()
    return _from_local_runtime(), []
