"""What SASL costs on the same broker: the raw aiokafka produce→consume ceiling (citystream.bench.ceiling) over the
local runtime's unauthenticated listener and over SASL/SCRAM, and the time a client takes to connect on each.

Each path gets a topic of its own under the bench prefix, with ACLs made for the measurement and removed after it
(the unauthenticated listener's User:ANONYMOUS is granted nothing otherwise)."""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import replace

from aiokafka.admin import NewTopic
from pydantic_settings import BaseSettings, SettingsConfigDict

from citystream.bench import ceiling
from citystream.bench.fleet import BenchFleet
from schemas.access import READ, WRITE, Grant
from services.common.kafka import make_admin
from services.common.kafka_principals import apply_grants, delete_user, revoke_principal, upsert_users
from services.common.settings import SASL_PROTOCOLS, KafkaAccess

ANONYMOUS = "ANONYMOUS"
CONNECTS = 10


class SaslCostSettings(BaseSettings):
    """CITYSTREAM_KAFKA_ANONYMOUS_BOOTSTRAP: the same broker's listener without authentication (`dev env` sets it)."""

    model_config = SettingsConfigDict(env_prefix="CITYSTREAM_", frozen=True, extra="ignore")

    kafka_anonymous_bootstrap: str = ""


async def _connect_ms(access: KafkaAccess) -> float:
    """Median milliseconds from nothing to a bootstrapped client (TCP, SASL handshake, metadata)."""
    times = []
    for _ in range(CONNECTS):
        client = make_admin(access)
        started = time.perf_counter()
        await client.start()
        times.append((time.perf_counter() - started) * 1000)
        await client.close()
    return sorted(times)[len(times) // 2]


async def measure(admin: KafkaAccess, topic_prefix: str, fleet: BenchFleet, count: int,
                  anonymous_bootstrap: str | None = None) -> dict:
    """Readings/s of the raw ceiling without and with SASL (one topic each), their ratio, and connect times."""
    anonymous_bootstrap = anonymous_bootstrap or SaslCostSettings().kafka_anonymous_bootstrap
    if admin.security_protocol not in SASL_PROTOCOLS or not anonymous_bootstrap:
        return {"skipped": "the broker has no SASL listener and an unauthenticated one to compare"}
    run = uuid.uuid4().hex[:6]
    user, password = f"bench-sasl-{run}", secrets.token_urlsafe(18)
    topics = {"plaintext": f"{topic_prefix}.plaintext.{run}", "sasl": f"{topic_prefix}.sasl.{run}"}
    client = make_admin(admin)
    await client.start()
    try:
        await client.create_topics([NewTopic(name, ceiling.PARTITIONS, 1) for name in topics.values()])
    finally:
        await client.close()
    plain_access = KafkaAccess(anonymous_bootstrap)
    scram_access = admin.as_user(user, password)
    grant = Grant(ANONYMOUS, "topic", topics["plaintext"], "literal", WRITE + READ)
    try:
        await upsert_users(admin, {user: password})
        await apply_grants(admin, [grant, replace(grant, principal=user, name=topics["sasl"])])
        per_s = {"plaintext": [], "sasl": []}
        for _ in range(2):  # alternated, so a noisy neighbour hurts both paths alike
            per_s["plaintext"].append(await ceiling.kafka_ceiling(plain_access, topics["plaintext"], fleet, count))
            per_s["sasl"].append(await ceiling.kafka_ceiling(scram_access, topics["sasl"], fleet, count))
        connect = {"plaintext": await _connect_ms(plain_access), "sasl_scram": await _connect_ms(scram_access),
                   "sasl_plain_admin": await _connect_ms(admin)}
    finally:
        await revoke_principal(admin, user)
        await revoke_principal(admin, ANONYMOUS)
        await delete_user(admin, user)
    best = {path: max(values) for path, values in per_s.items()}
    return {"records": count, "plaintext_per_s": best["plaintext"], "sasl_scram_per_s": best["sasl"],
            "sasl_over_plaintext": best["sasl"] / best["plaintext"], "runs_per_s": per_s, "connect_ms": connect}


def describe(result: dict) -> str:
    """One line for the bench's console."""
    if "skipped" in result:
        return f"SASL cost: skipped ({result['skipped']})"
    connect = result["connect_ms"]
    return (f"SASL cost: raw produce→consume {result['sasl_scram_per_s']:,.0f}/s with SCRAM vs "
            f"{result['plaintext_per_s']:,.0f}/s without ({result['sasl_over_plaintext']:.2f}x); connect "
            f"{connect['sasl_scram']:.0f} ms SCRAM, {connect['plaintext']:.0f} ms without")
