"""A three-node cluster of the local runtime's own kind for one test module, and what its failure tests ask of it:
which node leads which partitions, whether every replica is back in sync, killing and restarting one node."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from citystream.devenv import kafka, principals
from citystream.devenv.config import DevSettings
from citystream.devenv.process import port_open, wait_until
from services.common.kafka import make_admin
from services.common.settings import KafkaAccess

BROKERS = 3
PORT_STEP = 10
# Where the search for nine free ports starts (node n: base + 10 (n - 1), +1 controller, +2 anonymous);
# CITYSTREAM_TEST_CLUSTER_PORT moves it.
DEFAULT_BASE_PORT = 31092


def _free_base(start: int) -> int:
    for base in range(start, start + 2000, 100):
        ports = [base + PORT_STEP * n + k for n in range(BROKERS) for k in range(3)]
        if not any(port_open(port) for port in ports):
            return base
    raise RuntimeError(f"no nine free ports from {start} on")


@contextmanager
def three_node_cluster() -> Iterator[DevSettings]:
    """Started in a state dir of its own, on ports of its own (never the shared runtime's); stopped and removed
    after."""
    main = DevSettings()
    state_dir = Path(tempfile.mkdtemp(prefix="cs-cluster-"))
    base = _free_base(int(os.environ.get("CITYSTREAM_TEST_CLUSTER_PORT", DEFAULT_BASE_PORT)))
    settings = DevSettings(cache_dir=main.cache_dir, state_dir=state_dir, kafka_brokers=BROKERS,
                           kafka_node_port_step=PORT_STEP, kafka_port=base, kafka_controller_port=base + 1,
                           kafka_anonymous_port=base + 2, kafka_heap_mb=384, start_timeout_s=120)
    try:
        kafka.start(settings)
        yield settings
    finally:
        kafka.stop(settings)
        shutil.rmtree(state_dir, ignore_errors=True)


def admin(settings: DevSettings) -> KafkaAccess:
    return principals.admin_access(settings)


async def partitions(access: KafkaAccess, topics: list[str]) -> list[dict]:
    """Each partition of `topics`: {"topic", "partition", "leader", "replicas", "isr"} as the cluster says now."""
    client = make_admin(access, request_timeout_ms=10_000)
    await client.start()
    try:
        described = await client.describe_topics(topics)
    finally:
        await client.close()
    return [{"topic": t["topic"], **p} for t in described for p in t["partitions"]]


async def min_in_sync(access: KafkaAccess, topics: list[str]) -> dict[str, str]:
    """Each topic's effective min.insync.replicas."""
    client = make_admin(access, request_timeout_ms=10_000)
    await client.start()
    try:
        described = await client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
    finally:
        await client.close()
    return {resource["resource_name"]: entry["config_value"]
            for response in described for resource in response.to_object()["resources"]
            for entry in resource["config_entries"] if entry["config_names"] == "min.insync.replicas"}


async def busiest_leader(access: KafkaAccess, topics: list[str]) -> tuple[int, int]:
    """(node, partitions it leads) of the node leading most of `topics`' partitions (lowest id on a tie)."""
    led = Counter(p["leader"] for p in await partitions(access, topics) if p["leader"] >= 0)
    node = min(led, key=lambda n: (-led[n], n))
    return node, led[node]


async def wait_in_sync(access: KafkaAccess, topics: list[str], timeout_s: float) -> float:
    """Seconds until every replica of `topics` is in sync (ISR = replicas) and every partition has a leader."""
    began = time.monotonic()
    while True:
        try:
            found = await partitions(access, topics)
        except Exception:  # noqa: BLE001 - a node that just came back may refuse a request or two
            found = []
        if found and all(p["leader"] >= 0 and set(p["isr"]) == set(p["replicas"]) for p in found):
            return time.monotonic() - began
        if time.monotonic() - began > timeout_s:
            raise AssertionError(f"replicas not in sync after {timeout_s:.0f} s: {found}")
        await asyncio.sleep(0.5)


def signal_node(settings: DevSettings, node: int, sig: signal.Signals) -> int:
    """Sends `sig` to node `node` and waits until its process is gone. Returns its pid."""
    pid = kafka.node_status(settings, node)["pid"]
    assert pid, f"node {node} is not running"
    os.kill(pid, sig)
    assert wait_until(lambda: kafka.node_status(settings, node)["pid"] is None, 60), f"node {node} did not stop"
    return pid
