"""docker-compose.yml's Kafka authenticates every client and authorizes by the catalogue, as the local runtime does."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from schemas.access import SERVICE_PRINCIPALS

REPO = Path(__file__).resolve().parents[3]
SERVICES = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
KAFKA = SERVICES["kafka"]["environment"]


def test_every_listener_authenticates_and_nothing_is_allowed_without_an_acl():
    protocols = dict(item.split(":") for item in KAFKA["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(protocols.values()) == {"SASL_PLAINTEXT"}
    assert KAFKA["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert KAFKA["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert KAFKA["KAFKA_SUPER_USERS"] == "User:citystream-broker;User:citystream-admin"
    for listener in ("SASL__PLAINTEXT", "HOST"):
        assert "ScramLoginModule" in KAFKA[f"KAFKA_LISTENER_NAME_{listener}_SCRAM___SHA___512_SASL_JAAS_CONFIG"]


@pytest.mark.parametrize("service", sorted(SERVICE_PRINCIPALS))
def test_each_service_runs_as_its_own_principal(service):
    environment = SERVICES[service]["environment"]
    assert environment["CITYSTREAM_KAFKA_USERNAME"] == SERVICE_PRINCIPALS[service]
    assert environment["CITYSTREAM_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert environment["CITYSTREAM_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert environment["CITYSTREAM_KAFKA_PASSWORD"].startswith("${CITYSTREAM_KAFKA_PASSWORD_")


def test_the_init_job_provisions_the_principals_as_the_admin():
    init = SERVICES["init"]
    assert "citystream kafka-users provision" in init["command"][-1]
    assert init["environment"]["CITYSTREAM_KAFKA_USERNAME"] == "citystream-admin"
    for service in SERVICE_PRINCIPALS:
        assert f"CITYSTREAM_KAFKA_PASSWORD_{service.upper().replace('-', '_')}" in init["environment"]
