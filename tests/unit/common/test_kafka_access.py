"""Every Kafka client of a process takes its connection and credentials from the settings' one KafkaAccess."""

from __future__ import annotations

import ssl

from pydantic import SecretStr

from services.common.kafka import faust_credentials, make_admin, make_consumer, make_producer
from services.common.settings import CommonSettings, KafkaAccess


def test_plaintext_has_no_sasl_options_and_a_bare_bootstrap_means_plaintext():
    assert KafkaAccess("127.0.0.1:1").client_options() == {"bootstrap_servers": "127.0.0.1:1",
                                                           "security_protocol": "PLAINTEXT"}
    assert faust_credentials("127.0.0.1:1") is None


def test_settings_carry_the_sasl_login_and_keep_the_password_secret(monkeypatch):
    monkeypatch.setenv("CITYSTREAM_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("CITYSTREAM_KAFKA_USERNAME", "citystream-gate")
    monkeypatch.setenv("CITYSTREAM_KAFKA_PASSWORD", "s3cret-value")
    settings = CommonSettings(kafka_bootstrap="127.0.0.1:2")
    assert settings.kafka.client_options() == {
        "bootstrap_servers": "127.0.0.1:2", "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "citystream-gate", "sasl_plain_password": "s3cret-value"}
    assert "s3cret-value" not in repr(settings) and "s3cret-value" not in repr(settings.kafka)
    assert settings.kafka.environment()["CITYSTREAM_KAFKA_PASSWORD"] == "s3cret-value"
    credentials = faust_credentials(settings.kafka)
    assert (credentials.username, credentials.password, credentials.mechanism.value, credentials.protocol.value) == (
        "citystream-gate", "s3cret-value", "SCRAM-SHA-512", "SASL_PLAINTEXT")


def test_sasl_ssl_verifies_the_broker_with_the_system_cas():
    access = KafkaAccess("broker:9093", "SASL_SSL", username="u", password=SecretStr("p"))
    context = access.client_options()["ssl_context"]
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED
    assert faust_credentials(access).protocol.value == "SASL_SSL"


def test_as_user_logs_in_with_scram_on_the_same_broker():
    admin = KafkaAccess("127.0.0.1:3", "SASL_PLAINTEXT", "PLAIN", "citystream-admin", SecretStr("a"))
    city = admin.as_user("city-tram", "b")
    assert (city.bootstrap, city.security_protocol, city.sasl_mechanism, city.username) == (
        "127.0.0.1:3", "SASL_PLAINTEXT", "SCRAM-SHA-512", "city-tram")


async def test_every_client_factory_applies_the_access():
    access = KafkaAccess("127.0.0.1:4", "SASL_PLAINTEXT", "SCRAM-SHA-512", "citystream-api", SecretStr("x"))
    producer, consumer = make_producer(access, "t"), make_consumer(access, None)
    admin = make_admin(access)
    for client in (producer.client, consumer._client, admin._client):
        assert (client._security_protocol, client._sasl_mechanism, client._sasl_plain_username) == (
            "SASL_PLAINTEXT", "SCRAM-SHA-512", "citystream-api")
    await producer.stop()
    await consumer.stop()
    await admin.close()
