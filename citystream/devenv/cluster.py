"""The local Kafka's nodes as data, no I/O: the controller quorum, the replication of Kafka's internal topics and
each node's server.properties lines (kafka.py writes and runs them)."""

from __future__ import annotations

from pathlib import Path

from citystream.devenv.config import DevSettings
from schemas.topics import MIN_IN_SYNC_REPLICAS, REPLICAS, fit_replication


def quorum_voters(settings: DevSettings) -> str:
    """`controller.quorum.voters`: every node is a voter, so a quorum of three survives the loss of one node."""
    return ",".join(f"{node}@127.0.0.1:{settings.node_ports(node).controller}" for node in settings.kafka_nodes)


def internal_replication(settings: DevSettings) -> tuple[int, int]:
    """(replication factor, min ISR) of the offsets and transaction-state topics: the catalogue's rule for its own
    topics (schemas.topics.fit_replication), so a consumer group's offsets are as durable as its readings."""
    return fit_replication(REPLICAS, MIN_IN_SYNC_REPLICAS, settings.kafka_brokers)


def server_properties(settings: DevSettings, node: int, data_dir: Path, listeners: list[str]) -> list[str]:
    """server.properties of node `node`; `listeners` are its listener and security lines (principals.py)."""
    replicas, min_in_sync = internal_replication(settings)
    return [
        "# Written by `citystream dev up`; edits are overwritten.",
        "process.roles=broker,controller",
        f"node.id={node}",
        f"controller.quorum.voters={quorum_voters(settings)}",
        *listeners,
        "controller.listener.names=CONTROLLER",
        f"log.dirs={data_dir}",
        "num.partitions=4",
        f"offsets.topic.replication.factor={replicas}",
        "offsets.topic.num.partitions=8",
        f"transaction.state.log.replication.factor={replicas}",
        f"transaction.state.log.min.isr={min_in_sync}",
        f"share.coordinator.state.topic.replication.factor={replicas}",
        f"share.coordinator.state.topic.min.isr={min_in_sync}",
        # For a client that asks for "the broker's default" (-1). No broker-wide min.insync.replicas: Faust creates
        # its changelog topics with its own replication factor (1 unless TOPIC_REPLICATION_FACTOR says otherwise),
        # and a topic with fewer replicas than its min ISR refuses every acks=all write. Catalogue topics carry
        # their min ISR per topic (services.common.kafka.create_topics).
        f"default.replication.factor={replicas}",
        # Never elect a replica that missed acked writes: a partition waits for an in-sync replica instead.
        "unclean.leader.election.enable=false",
        "group.initial.rebalance.delay.ms=0",
        "log.retention.hours=168",
        "log.segment.bytes=67108864",
        # Topics come from the catalogue (`citystream topics create`) and Faust's own admin requests; a
        # producer or consumer naming a misspelt topic gets an error instead of a new, unwatched topic.
        "auto.create.topics.enable=false",
        "",
    ]
