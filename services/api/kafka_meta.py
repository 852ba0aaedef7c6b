"""Partition lookup for consumers that assign partitions by hand (no consumer group)."""

from __future__ import annotations

from aiokafka import TopicPartition


async def partitions_of(consumer, topic: str) -> list[TopicPartition]:
    # consumer.topics() fetches metadata but does not store it; read the partitions from the fetched cluster view.
    cluster = await consumer._client.fetch_all_metadata()
    numbers = cluster.partitions_for_topic(topic)
    if not numbers:
        raise RuntimeError(f"topic {topic} does not exist; run `citystream topics create`")
    return [TopicPartition(topic, p) for p in sorted(numbers)]
