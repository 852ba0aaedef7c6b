"""`citystream kafka-users add | list | remove | provision`: Kafka principals and their ACLs (schemas/access.py),
run with the admin's CITYSTREAM_KAFKA_* credentials (`eval "$(citystream dev env)"` for the local runtime)."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from typing import Annotated

import typer
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console

from schemas.access import SERVICE_PRINCIPALS, city_system_principal, grants
from services.common.kafka_principals import (
    apply_grants,
    delete_user,
    describe_acls,
    list_users,
    revoke_principal,
    upsert_users,
)
from services.common.settings import CommonSettings

app = typer.Typer(help="Kafka principals of services and city systems, and their ACLs (schemas/access.py).",
                  no_args_is_help=True)
console = Console(stderr=True)
CITY_SYSTEM_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
MECHANISM = "SCRAM-SHA-512"


class ServicePasswords(BaseSettings):
    """Each service's SCRAM password, for `provision` (CITYSTREAM_KAFKA_PASSWORD_REGISTER, ..._INGEST_GATE, ...)."""

    model_config = SettingsConfigDict(env_prefix="CITYSTREAM_KAFKA_PASSWORD_", frozen=True, extra="ignore")

    # Not `register`: pydantic models already have that attribute (ABCMeta.register).
    register_service: SecretStr = Field(validation_alias="CITYSTREAM_KAFKA_PASSWORD_REGISTER")
    ingest_gate: SecretStr
    ingest_http: SecretStr
    ingest_sink: SecretStr
    anomaly: SecretStr
    api: SecretStr

    def by_principal(self) -> dict[str, str]:
        fields = {"register": self.register_service, "ingest-gate": self.ingest_gate, "ingest-http": self.ingest_http,
                  "ingest-sink": self.ingest_sink, "anomaly": self.anomaly, "api": self.api}
        return {principal: fields[service].get_secret_value() for service, principal in SERVICE_PRINCIPALS.items()}


def _admin_call(what: str, call):
    """Run an admin coroutine; a refusal or an unreachable broker is one line, not a traceback."""
    # The local admin's PLAIN login on loopback is by design; aiokafka warns "in the clear" on every connection.
    logging.getLogger("aiokafka.conn").setLevel(logging.ERROR)
    try:
        return asyncio.run(call)
    except Exception as problem:  # aiokafka raises several unrelated types for "broker unreachable" or refused
        console.print(f"[red]error:[/red] could not {what}: {problem!r} (are CITYSTREAM_KAFKA_* the admin's? "
                      '`eval "$(citystream dev env)"` sets them for the local runtime)')
        raise typer.Exit(code=1) from problem


@app.command("add")
def add(name: Annotated[str, typer.Argument(help="The city system, e.g. tram-depot")]) -> None:
    """Create a city system's SCRAM user with the catalogue's ACLs; prints its password once (not stored)."""
    if not CITY_SYSTEM_NAME.match(name):
        console.print("[red]error:[/red] NAME: lower-case letters, digits and '-', at most 63 characters")
        raise typer.Exit(code=2)
    settings = CommonSettings()
    principal, password = city_system_principal(name), secrets.token_urlsafe(24)
    policy = [g for g in grants(settings.topic_prefix, [name]) if g.principal == principal]

    async def create() -> int:
        await upsert_users(settings.kafka, {principal: password}, MECHANISM)
        return await apply_grants(settings.kafka, policy)

    count = _admin_call(f"add {principal}", create())
    console.print(f"{principal}: {MECHANISM} user with {count} ACL entries; it may write only "
                  f"{settings.topic_prefix}citystream.readings.raw.v1. Its password, shown once:")
    print(f"CITYSTREAM_KAFKA_USERNAME={principal}\nCITYSTREAM_KAFKA_PASSWORD={password}")


@app.command("list")
def list_() -> None:
    """Every SCRAM user and the number of its ACL entries."""
    settings = CommonSettings()

    async def listing():
        return await list_users(settings.kafka), await describe_acls(settings.kafka)

    users, acls = _admin_call("list Kafka users", listing())
    for user in users:
        print(f"{user}\t{sum(1 for acl in acls if acl.principal == user)} ACL entries")


@app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="The city system (or its city-... principal)")]) -> None:
    """Delete a city system's SCRAM user and every ACL naming it (open connections last until they close)."""
    settings = CommonSettings()
    principal = city_system_principal(name)

    async def delete() -> None:
        await revoke_principal(settings.kafka, principal)
        await delete_user(settings.kafka, principal)

    _admin_call(f"remove {principal}", delete())
    console.print(f"removed {principal} and its ACLs")


@app.command("provision")
def provision() -> None:
    """Create or reset every service's SCRAM user (passwords from CITYSTREAM_KAFKA_PASSWORD_<SERVICE>) and apply
    the catalogue's ACLs; idempotent (docker compose's init job runs it; the local runtime does it by itself)."""
    settings = CommonSettings()
    passwords = ServicePasswords().by_principal()

    async def apply() -> int:
        await upsert_users(settings.kafka, passwords, MECHANISM)
        return await apply_grants(settings.kafka, grants(settings.topic_prefix))

    count = _admin_call("provision the services' principals", apply())
    console.print(f"{len(passwords)} service principals, {count} ACL entries")
