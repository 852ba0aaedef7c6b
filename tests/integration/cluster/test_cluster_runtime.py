"""`citystream dev up --brokers 3` for real: three nodes on loopback, each shown by `dev status`; the catalogue's
topics replicated three times with min.insync.replicas 2, and the consumer offsets likewise; SASL/SCRAM and the
catalogue's ACLs enforced by every node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import replace

import pytest
from aiokafka.errors import TopicAuthorizationFailedError

from citystream.devenv import kafka, principals
from citystream.devenv.config import DevSettings
from citystream.devenv.process import RuntimeProblem
from schemas.topics import CATALOGUE, REGISTER_SENSORS, readings_topic
from services.common.kafka import create_topics, make_consumer, make_producer
from tests.integration.cluster.brokers import admin, min_in_sync, partitions


def _dev(settings, *args: str) -> subprocess.CompletedProcess:
    """The CLI pointed at the cluster by its state dir and ports alone: the broker count is remembered."""
    env = os.environ | {"CITYSTREAM_DEV_STATE_DIR": str(settings.state_dir),
                        "CITYSTREAM_DEV_KAFKA_PORT": str(settings.kafka_port),
                        "CITYSTREAM_DEV_KAFKA_CONTROLLER_PORT": str(settings.kafka_controller_port),
                        "CITYSTREAM_DEV_KAFKA_ANONYMOUS_PORT": str(settings.kafka_anonymous_port),
                        "CITYSTREAM_DEV_KAFKA_NODE_PORT_STEP": str(settings.kafka_node_port_step)}
    env.pop("CITYSTREAM_DEV_KAFKA_BROKERS", None)
    return subprocess.run([sys.executable, "-m", "citystream.cli", "dev", *args], check=False, capture_output=True,
                          text=True, timeout=120, env=env)


def test_status_shows_each_broker_and_env_names_them_all(cluster):
    status = _dev(cluster, "status", "--json")
    report = json.loads(status.stdout)["kafka"]
    assert report["state"] == "up"
    assert [(b["node"], b["state"], b["port"]) for b in report["brokers"]] == [
        (node, "up", cluster.kafka_port + 10 * (node - 1)) for node in (1, 2, 3)]
    assert len({b["pid"] for b in report["brokers"]}) == 3, "three processes"
    table = _dev(cluster, "status").stdout
    assert all(f"broker {node}" in table for node in (1, 2, 3)), table
    bootstrap = next(line for line in _dev(cluster, "env").stdout.splitlines() if "KAFKA_BOOTSTRAP=" in line)
    assert bootstrap.endswith(",".join(f"127.0.0.1:{cluster.kafka_port + 10 * n}" for n in range(3)))


def test_start_again_is_idempotent_and_a_different_size_is_refused(cluster):
    # In-process, not `dev up`: that would also start a PostgreSQL of this state dir's own.
    assert "already running" in kafka.start(cluster)
    remembered = DevSettings(**cluster.model_dump(exclude={"kafka_brokers"}))
    assert remembered.kafka_brokers == 3, "the size is remembered: no --brokers needed after the first start"
    with pytest.raises(RuntimeProblem, match=r"formatted for 3 broker\(s\), not 1"):
        kafka.start(cluster.model_copy(update={"kafka_brokers": 1}))
    assert kafka.status(cluster)["state"] == "up", "a refused start leaves the cluster alone"


async def test_catalogue_and_offsets_topics_get_three_replicas_and_min_isr_two(cluster):
    access = admin(cluster)
    await create_topics(access)
    names = [spec.name for spec in CATALOGUE]
    found = await partitions(access, names)
    assert {p["topic"] for p in found} == set(names)
    assert all(len(p["replicas"]) == 3 and set(p["isr"]) == set(p["replicas"]) for p in found), found
    # Preferred leaders spread over the three nodes (who leads now depends on which nodes restarted lately).
    assert len({p["replicas"][0] for p in found}) == 3
    assert await min_in_sync(access, names) == dict.fromkeys(names, "2")

    # The consumer offsets topic appears with the first group: replicated like the readings.
    topic = readings_topic("traffic")
    producer = make_producer(access, "cluster-test")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"{}", key=b"cluster-test")
    finally:
        await producer.stop()
    consumer = make_consumer(access, f"cluster-test-{uuid.uuid4().hex[:6]}", topic)
    await consumer.start()
    try:
        await consumer.getmany(timeout_ms=5000)
        await consumer.commit()
    finally:
        await consumer.stop()
    offsets = await partitions(access, ["__consumer_offsets"])
    assert offsets and all(len(p["replicas"]) == 3 for p in offsets)
    assert await min_in_sync(access, ["__consumer_offsets"]) == {"__consumer_offsets": "2"}


async def test_every_node_authenticates_and_enforces_the_catalogue(cluster):
    await create_topics(admin(cluster))
    api = principals.service_access(cluster, "api")  # may write operator actions, never readings or the register
    ingest = principals.service_access(cluster, "ingest-http")
    for node in cluster.kafka_nodes:  # each node alone as bootstrap: each one authenticates and authorizes
        one = f"127.0.0.1:{cluster.node_ports(node).client}"
        producer = make_producer(replace(ingest, bootstrap=one), f"cluster-authz-{node}")
        await producer.start()
        try:
            await producer.send_and_wait(readings_topic("traffic"), b"{}", key=b"authz")
        finally:
            await producer.stop()
        refused = make_producer(replace(api, bootstrap=one), f"cluster-authz-api-{node}", request_timeout_ms=5000)
        await refused.start()
        try:
            with pytest.raises(TopicAuthorizationFailedError):
                await refused.send_and_wait(REGISTER_SENSORS, b"{}", key=b"forged")
        finally:
            await refused.stop()
