"""Kafka clients built one way everywhere: idempotent producer with acks=all, JSON values, sensor-id keys."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from schemas.topics import CATALOGUE, TopicSpec
from services.common.errors import ConfigurationError
from services.common.settings import SASL_PROTOCOLS, KafkaAccess

log = logging.getLogger(__name__)


def access_of(kafka: KafkaAccess | str) -> KafkaAccess:
    """A bare bootstrap string means an unauthenticated (PLAINTEXT) client."""
    return kafka if isinstance(kafka, KafkaAccess) else KafkaAccess(kafka)


def make_producer(kafka: KafkaAccess | str, client_id: str, *, linger_ms: int = 5, **overrides) -> AIOKafkaProducer:
    """An idempotent producer (acks=all): a retried send is never written twice to a partition."""
    options = dict(
        **access_of(kafka).client_options(),
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
        compression_type=compression_type(),
        max_batch_size=512 * 1024,
        request_timeout_ms=10_000,
    )
    options.update(overrides)
    return AIOKafkaProducer(**options)


def make_consumer(kafka: KafkaAccess | str, group_id: str | None, *topics: str, **overrides) -> AIOKafkaConsumer:
    """A consumer that commits by hand, after the work for a record is durable."""
    options = dict(
        **access_of(kafka).client_options(),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=2000,
    )
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


def make_admin(kafka: KafkaAccess | str, **overrides) -> AIOKafkaAdminClient:
    """An admin client (topics, ACLs) with the process's credentials."""
    return AIOKafkaAdminClient(**(access_of(kafka).client_options() | overrides))


def faust_credentials(kafka: KafkaAccess | str):
    """Faust's `broker_credentials` for this access (None for PLAINTEXT)."""
    access = access_of(kafka)
    if access.security_protocol not in SASL_PROTOCOLS:
        return None
    import faust

    return faust.SASLCredentials(
        username=access.username, password=access.password.get_secret_value(), mechanism=access.sasl_mechanism,
        ssl_context=access.client_options().get("ssl_context"))


async def broker_answers(client, topic: str) -> None:
    """Raises unless a broker answers a metadata request for `topic` (into a throwaway ClusterMetadata, so the
    client's own view of the cluster is left alone). One topic, not the whole cluster: a metadata request for every
    topic costs ~0.15 s of CPU on a broker holding a few thousand topics, too much for a check run every second."""
    from aiokafka.cluster import ClusterMetadata

    # aiokafka has no public call for one topic's metadata; `_metadata_update` is what `fetch_all_metadata` uses.
    if not await client._metadata_update(ClusterMetadata(), [topic]):
        raise KafkaConnectionError(f"no broker answered a metadata request for {topic}")


async def topic_partitions(consumer, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of `topics`, in order, from a fresh metadata request (a consumer without a group or a
    subscription has no metadata of its own yet)."""
    cluster = await consumer._client.fetch_all_metadata()
    return [TopicPartition(topic, p) for topic in topics for p in sorted(cluster.partitions_for_topic(topic) or ())]


def compression_type() -> str:
    """zstd: of the codecs every Kafka client and broker reads, the cheapest per record for our small JSON values.

    Measured on 2,000 gate records (~260 bytes each) with aiokafka's own codecs: lz4 (which aiokafka runs at level
    9, LZ4-HC) costs 2.4 µs per record to compress and 0.4 to decompress, at 5.4:1; zstd 0.5 and 0.12, at 7.8:1. A
    reading is compressed once (ingest) and decompressed by every consumer (sink, anomaly worker) and the broker.
    aiokafka compresses through cramjam (pyproject), so ask aiokafka itself what it can do."""
    from aiokafka.codec import has_lz4, has_zstd

    return "zstd" if has_zstd() else "lz4" if has_lz4() else "gzip"


async def create_topics(
    kafka: KafkaAccess | str, specs: Iterable[TopicSpec] = CATALOGUE, *, prefix: str = "",
    partitions: int | None = None,
) -> list[str]:
    """Create the catalogue's topics that do not exist yet, replicated as the catalogue asks and the cluster's size
    allows (3 copies and min.insync.replicas 2 on three brokers, 1 and 1 on one). Returns the names created.
    Idempotent: an existing topic is left as it is."""
    admin = make_admin(kafka, request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        brokers = await broker_count(admin)
        wanted = []
        for spec in specs:
            if prefix + spec.name in existing:
                continue
            replicas, min_in_sync = spec.replication_on(brokers)
            wanted.append(NewTopic(name=prefix + spec.name, num_partitions=partitions or spec.partitions,
                                   replication_factor=replicas,
                                   topic_configs=spec.config() | {"min.insync.replicas": str(min_in_sync)}))
        if not wanted:
            return []
        try:
            response = await admin.create_topics(wanted)
        except TopicAlreadyExistsError:
            log.info("a topic appeared while creating; another process created it")
            return []
        # The broker answers per topic instead of raising (CreateTopicsResponse.topic_errors).
        created, refused = topic_outcomes(response.to_object())
        if refused:
            raise ConfigurationError("Kafka refused to create " + "; ".join(f"{n}: {why}" for n, why in refused))
        return created
    finally:
        await admin.close()


async def broker_count(admin: AIOKafkaAdminClient) -> int:
    """Brokers registered in the cluster now (a broker that is down is not counted: topics created while one is
    down get fewer replicas, as Kafka would refuse more replicas than live brokers anyway)."""
    # A metadata request for no topic: `describe_cluster` asks for every topic (costly with thousands of them).
    return len((await admin._get_cluster_metadata(topics=[])).to_object()["brokers"])


def topic_outcomes(response: dict) -> tuple[list[str], list[tuple[str, str]]]:
    """(created, refused with the broker's reason) from a CreateTopics response; existing topics count as done."""
    created: list[str] = []
    refused: list[tuple[str, str]] = []
    for outcome in response.get("topic_errors", response.get("topics", [])):
        name, code = outcome.get("topic", outcome.get("name")), outcome["error_code"]
        if code == 0:
            created.append(name)
        elif code == TopicAlreadyExistsError.errno:
            log.info("topic %s appeared while creating; another process created it", name)
        else:
            refused.append((name, outcome.get("error_message") or f"error code {code}"))
    return created, refused


async def topics_with_prefixes(kafka: KafkaAccess | str, prefixes: Iterable[str]) -> list[str]:
    """The topics whose name starts with one of `prefixes`, sorted (none for no prefix)."""
    prefixes = tuple(prefixes)
    if not prefixes:
        return []
    admin = make_admin(kafka, request_timeout_ms=60_000)
    await admin.start()
    try:
        return sorted(name for name in await admin.list_topics() if name.startswith(prefixes))
    finally:
        await admin.close()


async def delete_topics(kafka: KafkaAccess | str, names: list[str], *, batch: int = 200) -> None:
    """Delete these topics; the broker deletes asynchronously."""
    if not names:
        return
    admin = make_admin(kafka, request_timeout_ms=60_000)
    await admin.start()
    try:
        for start in range(0, len(names), batch):  # one request per batch keeps each under the request timeout
            await admin.delete_topics(names[start:start + batch], timeout_ms=60_000)
    finally:
        await admin.close()


async def delete_topics_with_prefixes(kafka: KafkaAccess | str, prefixes: Iterable[str]) -> list[str]:
    """Delete every topic whose name starts with one of `prefixes` (a benchmark's or a test run's own topics,
    Faust's changelogs under an app id included). Returns the names asked for."""
    names = await topics_with_prefixes(kafka, prefixes)
    await delete_topics(kafka, names)
    return names
