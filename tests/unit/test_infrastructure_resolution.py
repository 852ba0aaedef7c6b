"""Where the tests find Kafka and the database: environment first, then testcontainers, then the local runtime."""

from __future__ import annotations

import warnings

import pytest

from services.common.settings import KafkaAccess
from tests.support import infra


@pytest.fixture
def sources(monkeypatch):
    calls: list[str] = []
    monkeypatch.delenv("CITYSTREAM_TEST_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.delenv("CITYSTREAM_TEST_DATABASE_URL", raising=False)

    def containers():
        calls.append("testcontainers")
        return infra.Infrastructure(KafkaAccess("127.0.0.1:1"), "postgresql://c", "testcontainers"), ["container"]

    def local():
        calls.append("local")
        return infra.Infrastructure(KafkaAccess("127.0.0.1:2"), "postgresql://l", "local runtime")

    monkeypatch.setattr(infra, "_from_testcontainers", containers)
    monkeypatch.setattr(infra, "_from_local_runtime", local)
    return calls


def test_environment_variables_win_when_both_are_set(sources, monkeypatch):
    monkeypatch.setenv("CITYSTREAM_TEST_KAFKA_BOOTSTRAP", "kafka.test:9092")
    monkeypatch.setenv("CITYSTREAM_TEST_DATABASE_URL", "postgresql://u@db.test/citystream")
    monkeypatch.setattr(infra, "_docker_engine_answers", lambda: True)
    found, containers = infra.resolve()
    assert (found.kafka_bootstrap, found.admin_database_url, found.origin) == (
        "kafka.test:9092", "postgresql://u@db.test/citystream", "environment")
    assert containers == [] and sources == []


def test_one_variable_alone_does_not_count(sources, monkeypatch):
    monkeypatch.setenv("CITYSTREAM_TEST_KAFKA_BOOTSTRAP", "kafka.test:9092")
    monkeypatch.setattr(infra, "_docker_engine_answers", lambda: False)
    assert infra.resolve()[0].origin == "local runtime"


def test_testcontainers_when_a_docker_engine_answers(sources, monkeypatch):
    monkeypatch.setattr(infra, "_docker_engine_answers", lambda: True)
    found, containers = infra.resolve()
    assert found.origin == "testcontainers" and containers == ["container"] and sources == ["testcontainers"]


def test_local_runtime_when_no_engine_answers(sources, monkeypatch):
    monkeypatch.setattr(infra, "_docker_engine_answers", lambda: False)
    assert infra.resolve()[0].origin == "local runtime" and sources == ["local"]


def test_no_engine_is_detected_without_a_socket(monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(infra.os.path, "exists", lambda path: False)
    assert infra._docker_engine_answers() is False


def test_kafka_container_is_single_node_kraft_advertised_on_its_host_port():
    environment = infra.kafka_container_environment(34567)
    assert environment["KAFKA_ADVERTISED_LISTENERS"] == "SASL_PLAINTEXT://127.0.0.1:34567"
    assert environment["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert environment["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@localhost:9093"
    assert infra.KAFKA_IMAGE == "apache/kafka:4.1.1"


def test_kafka_container_authenticates_and_denies_by_default():
    environment = infra.kafka_container_environment(34567)
    assert environment["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert environment["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert environment["KAFKA_SUPER_USERS"] == "User:citystream-broker;User:citystream-admin"
    # The image turns "___" into "-", "__" into "_" and "_" into "." (listener.name.sasl_plaintext.scram-sha-512...).
    scram = "KAFKA_LISTENER_NAME_SASL__PLAINTEXT_SCRAM___SHA___512_SASL_JAAS_CONFIG"
    assert environment[scram].startswith("org.apache.kafka.common.security.scram.ScramLoginModule")


def test_environment_path_carries_the_admin_credentials(sources, monkeypatch):
    monkeypatch.setenv("CITYSTREAM_TEST_KAFKA_BOOTSTRAP", "kafka.test:9092")
    monkeypatch.setenv("CITYSTREAM_TEST_DATABASE_URL", "postgresql://u@db.test/citystream")
    monkeypatch.setenv("CITYSTREAM_TEST_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("CITYSTREAM_TEST_KAFKA_USERNAME", "citystream-admin")
    monkeypatch.setenv("CITYSTREAM_TEST_KAFKA_PASSWORD", "s3cret")
    options = infra.resolve()[0].kafka.client_options()
    assert options == {"bootstrap_servers": "kafka.test:9092", "security_protocol": "SASL_PLAINTEXT",
                       "sasl_mechanism": "PLAIN", "sasl_plain_username": "citystream-admin",
                       "sasl_plain_password": "s3cret"}


def test_container_modules_import_without_deprecation_warnings():
    """The suite runs with warnings as errors: the container path must not import deprecated modules."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from testcontainers.community.postgres import PostgresContainer  # noqa: F401
        from testcontainers.core.container import DockerContainer  # noqa: F401
        from testcontainers.core.wait_strategies import LogMessageWaitStrategy  # noqa: F401
