"""`make bench`'s SASL cost: the raw ceiling on the same broker without and with SASL, and nothing left granted."""

from __future__ import annotations

import pytest

from citystream.bench import sasl_cost
from citystream.bench.fleet import VARIANTS, BenchFleet
from services.common.kafka_principals import describe_acls, list_users
from services.common.settings import KafkaAccess
from tests.support.infra import Infrastructure


def _fleet() -> BenchFleet:
    sensors = [f"bench-sasl-{n:03d}" for n in range(20)]
    return BenchFleet(sensors, ["kzz.x"] * len(sensors), [[{"intensity": 1.0}] * VARIANTS] * len(sensors))


async def test_sasl_and_plaintext_ceilings_are_measured_and_the_grants_removed(infrastructure: Infrastructure,
                                                                               kafka: KafkaAccess, topic_prefix):
    if infrastructure.anonymous_bootstrap is None:
        pytest.skip("this broker has no listener without authentication")
    result = await sasl_cost.measure(kafka, f"{topic_prefix}bench.sasl-cost", _fleet(), 2_000,
                                     infrastructure.anonymous_bootstrap)
    assert result["plaintext_per_s"] > 0 and result["sasl_scram_per_s"] > 0
    assert result["sasl_over_plaintext"] == result["sasl_scram_per_s"] / result["plaintext_per_s"]
    assert len(result["runs_per_s"]["plaintext"]) == len(result["runs_per_s"]["sasl"]) == 2
    assert set(result["connect_ms"]) == {"plaintext", "sasl_scram", "sasl_plain_admin"}
    assert "SASL cost: raw produce→consume" in sasl_cost.describe(result)
    assert not [acl for acl in await describe_acls(kafka) if acl.principal in ("ANONYMOUS",)
                or acl.principal.startswith("bench-sasl-")]
    assert not [user for user in await list_users(kafka) if user.startswith("bench-sasl-")]


async def test_a_broker_without_sasl_is_reported_as_skipped():
    result = await sasl_cost.measure(KafkaAccess("127.0.0.1:1"), "bench.sasl-cost", _fleet(), 10, "127.0.0.1:2")
    assert "skipped" in result and sasl_cost.describe(result).startswith("SASL cost: skipped")
