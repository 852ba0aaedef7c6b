"""The consumer-offsets topic of a local cluster gets the catalogue topics' min.insync.replicas: Kafka creates it
on the first group request with the broker-wide default (1, kept so for Faust's own topics, see cluster.py), so a
committed offset could otherwise be acknowledged by a single copy."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from citystream.devenv import cluster, principals
from citystream.devenv.config import DevSettings
from services.common.kafka import make_admin

log = logging.getLogger(__name__)

OFFSETS_TOPIC = "__consumer_offsets"
MIN_ISR = "min.insync.replicas"
DYNAMIC_TOPIC_CONFIG = 1  # DescribeConfigs' config_source of a topic's own setting (not a broker default)


def _own_settings(described) -> dict[str, str]:
    """The topic's own settings (a non-incremental AlterConfigs replaces them all, so they are sent back)."""
    return {entry["config_names"]: entry["config_value"]
            for response in described for resource in response.to_object()["resources"]
            for entry in resource["config_entries"] if entry["config_source"] == DYNAMIC_TOPIC_CONFIG}


async def _apply(settings: DevSettings, timeout_s: float) -> bool:
    """True when the offsets topic was changed, False when it already had the min ISR."""
    _, min_in_sync = cluster.internal_replication(settings)
    admin = make_admin(principals.admin_access(settings), request_timeout_ms=10_000)
    await admin.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while OFFSETS_TOPIC not in await admin.list_topics():
            try:  # a coordinator lookup makes the broker create the topic
                await admin.find_coordinator("citystream-devenv")
            except KafkaError as problem:
                log.debug("offsets topic not there yet: %r", problem)
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{OFFSETS_TOPIC} was not created in {timeout_s:.0f} s")
            await asyncio.sleep(0.5)
        resource = ConfigResource(ConfigResourceType.TOPIC, OFFSETS_TOPIC)
        own = _own_settings(await admin.describe_configs([resource]))
        if own.get(MIN_ISR) == str(min_in_sync):
            return False
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, OFFSETS_TOPIC,
                                                  own | {MIN_ISR: str(min_in_sync)})])
        return True
    finally:
        await admin.close()


def replicate(settings: DevSettings, timeout_s: float = 60.0) -> None:
    """Idempotent; nothing to do on a single node (min ISR 1 is the default)."""
    if settings.kafka_brokers == 1:
        return
    if asyncio.run(_apply(settings, timeout_s)):
        log.info("%s: %s set to %s", OFFSETS_TOPIC, MIN_ISR, cluster.internal_replication(settings)[1])
