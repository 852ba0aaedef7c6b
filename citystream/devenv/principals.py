"""The local broker's principals: development passwords kept in the state dir, SCRAM users and ACLs provisioned
from `schemas.access` on every `dev up` (idempotent, so a data dir formatted before them is brought up to date)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import time
from pathlib import Path

from aiokafka.errors import KafkaError
from pydantic import SecretStr

from citystream.devenv.config import DevSettings, NodePorts
from schemas.access import ADMIN_PRINCIPAL, SERVICE_PRINCIPALS, grants
from services.common.settings import KafkaAccess

log = logging.getLogger(__name__)

BROKER_PRINCIPAL = "citystream-broker"
# The broker's and the admin's passwords live in the broker's own config (SASL/PLAIN), so the admin can always log
# in, even before any SCRAM user exists; every service and city system authenticates with SCRAM.
ADMIN_MECHANISM = "PLAIN"
SERVICE_MECHANISM = "SCRAM-SHA-512"
# The prefix marks a development secret; a production deployment refuses to start on one.
DEV_PASSWORD_PREFIX = "citystream-dev-"


def passwords_file(settings: DevSettings) -> Path:
    return settings.state_dir / "kafka" / "principals.json"


def passwords(settings: DevSettings) -> dict[str, str]:
    """Principal -> password of the broker, the admin and every service; made once per runtime, readable only by
    its owner."""
    path = passwords_file(settings)
    wanted = [BROKER_PRINCIPAL, ADMIN_PRINCIPAL, *SERVICE_PRINCIPALS.values()]
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if all(name in known for name in wanted):
        return known
    known |= {name: DEV_PASSWORD_PREFIX + secrets.token_urlsafe(18) for name in wanted if name not in known}
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(known, handle, indent=1)
    return known


class _PlainOnLoopback(logging.Filter):
    """The admin's PLAIN login goes over loopback by design; aiokafka warns "in the clear" on every connection."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Sending username and password in the clear")


def admin_access(settings: DevSettings) -> KafkaAccess:
    """The super user: creates topics, provisions principals and ACLs."""
    if not any(isinstance(f, _PlainOnLoopback) for f in logging.getLogger("aiokafka.conn").filters):
        logging.getLogger("aiokafka.conn").addFilter(_PlainOnLoopback())
    if not settings.kafka_auth:
        return KafkaAccess(settings.kafka_bootstrap)
    return KafkaAccess(settings.kafka_bootstrap, "SASL_PLAINTEXT", ADMIN_MECHANISM, ADMIN_PRINCIPAL,
                       SecretStr(passwords(settings)[ADMIN_PRINCIPAL]))


def service_access(settings: DevSettings, service: str) -> KafkaAccess:
    """How service `service` (a key of SERVICE_PRINCIPALS) connects to the local broker."""
    if not settings.kafka_auth:
        return KafkaAccess(settings.kafka_bootstrap)
    principal = SERVICE_PRINCIPALS[service]
    return KafkaAccess(settings.kafka_bootstrap, "SASL_PLAINTEXT", SERVICE_MECHANISM, principal,
                       SecretStr(passwords(settings)[principal]))


def security_properties(broker_password: str, admin_password: str, listener: str = "SASL_PLAINTEXT") -> dict[str, str]:
    """Broker properties for SASL on `listener` and the controller listener, the StandardAuthorizer and
    deny-by-default; shared by the local runtime and the tests' Kafka container."""
    plain = "org.apache.kafka.common.security.plain.PlainLoginModule required"
    broker = f'username="{BROKER_PRINCIPAL}" password="{broker_password}" user_{BROKER_PRINCIPAL}="{broker_password}"'
    client = listener.lower()
    return {
        "inter.broker.listener.name": listener,
        "sasl.enabled.mechanisms": f"{SERVICE_MECHANISM},PLAIN",
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": f"{plain} {broker};",
        f"listener.name.{client}.plain.sasl.jaas.config": f'{plain} {broker} user_{ADMIN_PRINCIPAL}="{admin_password}";',
        f"listener.name.{client}.{SERVICE_MECHANISM.lower()}.sasl.jaas.config":
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{BROKER_PRINCIPAL};User:{ADMIN_PRINCIPAL}",
    }


def broker_properties(settings: DevSettings, ports: NodePorts) -> list[str]:
    """server.properties lines of the node on `ports`: SASL listeners, the StandardAuthorizer and deny-by-default.
    The nodes of a cluster share one broker password: they log in to each other and to the controllers with it."""
    known = passwords(settings)
    return [
        (f"listeners=SASL_PLAINTEXT://127.0.0.1:{ports.client},"
         f"ANONYMOUS://127.0.0.1:{ports.anonymous},"
         f"CONTROLLER://127.0.0.1:{ports.controller}"),
        (f"advertised.listeners=SASL_PLAINTEXT://127.0.0.1:{ports.client},"
         f"ANONYMOUS://127.0.0.1:{ports.anonymous}"),
        "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,ANONYMOUS:PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        *(f"{key}={value}" for key, value in
          security_properties(known[BROKER_PRINCIPAL], known[ADMIN_PRINCIPAL]).items()),
    ]


async def _provision(settings: DevSettings) -> int:
    from services.common.kafka_principals import apply_grants, upsert_users

    known = passwords(settings)
    admin = admin_access(settings)
    await upsert_users(admin, {p: known[p] for p in SERVICE_PRINCIPALS.values()}, SERVICE_MECHANISM)
    return await apply_grants(admin, grants())


def provision(settings: DevSettings, attempts: int = 30) -> None:
    """Give every service its SCRAM user and the catalogue's ACLs. The broker answers SASL logins a moment after it
    opens its port, so early refusals are retried for a few seconds."""
    if not settings.kafka_auth:
        return
    for attempt in range(attempts):
        try:
            count = asyncio.run(_provision(settings))
        except (KafkaError, OSError) as problem:
            if attempt == attempts - 1:
                raise
            log.debug("provisioning Kafka principals: %r; retrying", problem)
            time.sleep(1.0)
        else:
            log.info("Kafka principals provisioned: %d services, %d ACL entries", len(SERVICE_PRINCIPALS), count)
            return
