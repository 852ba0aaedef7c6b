"""Settings shared by every service. Each entrypoint builds its frozen settings object once, from CITYSTREAM_* env."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})


@dataclass(frozen=True)
class KafkaAccess:
    """Where a Kafka client connects and as whom; every client of a process is built from its one KafkaAccess."""

    bootstrap: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    username: str = ""
    password: SecretStr = field(default=SecretStr(""), repr=False)

    def client_options(self) -> dict:
        """aiokafka producer/consumer/admin keyword arguments."""
        options = {"bootstrap_servers": self.bootstrap, "security_protocol": self.security_protocol}
        if self.security_protocol in SASL_PROTOCOLS:
            options |= {"sasl_mechanism": self.sasl_mechanism, "sasl_plain_username": self.username,
                        "sasl_plain_password": self.password.get_secret_value()}
        if self.security_protocol in ("SSL", "SASL_SSL"):  # the system's CAs verify the broker's certificate
            options["ssl_context"] = ssl.create_default_context()
        return options

    def as_user(self, username: str, password: str, mechanism: str = "SCRAM-SHA-512") -> KafkaAccess:
        """The same broker, authenticated as another principal."""
        protocol = self.security_protocol if self.security_protocol in SASL_PROTOCOLS else "SASL_PLAINTEXT"
        return KafkaAccess(self.bootstrap, protocol, mechanism, username, SecretStr(password))

    def environment(self) -> dict[str, str]:
        """The CITYSTREAM_KAFKA_* variables a child process reads these from."""
        return {"CITYSTREAM_KAFKA_BOOTSTRAP": self.bootstrap,
                "CITYSTREAM_KAFKA_SECURITY_PROTOCOL": self.security_protocol,
                "CITYSTREAM_KAFKA_SASL_MECHANISM": self.sasl_mechanism,
                "CITYSTREAM_KAFKA_USERNAME": self.username,
                "CITYSTREAM_KAFKA_PASSWORD": self.password.get_secret_value()}


class CommonSettings(BaseSettings):
    """What every CityStream process needs. Services subclass it with their own fields."""

    model_config = SettingsConfigDict(env_prefix="CITYSTREAM_", frozen=True, extra="ignore")

    kafka_bootstrap: str = Field(default="127.0.0.1:19092", description="Kafka bootstrap servers, comma-separated.")
    kafka_security_protocol: str = Field(
        default="PLAINTEXT", description="PLAINTEXT, SASL_PLAINTEXT (loopback only) or SASL_SSL (deployments).")
    kafka_sasl_mechanism: str = Field(default="SCRAM-SHA-512", description="SCRAM-SHA-512 or SCRAM-SHA-256.")
    kafka_username: str = Field(default="", description="This service's Kafka principal (see schemas/access.py).")
    kafka_password: SecretStr = Field(default=SecretStr(""), description="Its SCRAM password.")
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

    @property
    def kafka(self) -> KafkaAccess:
        """How this process's Kafka clients connect."""
        return KafkaAccess(self.kafka_bootstrap, self.kafka_security_protocol, self.kafka_sasl_mechanism,
                           self.kafka_username, self.kafka_password)

    def topic(self, name: str) -> str:
        """The deployed name of catalogue topic `name`."""
        return f"{self.topic_prefix}{name}"
