"""Feeds the AlertHub from `citystream.alerts.v1` (no consumer group: every API instance sees every event)."""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import TopicPartition
from pydantic import ValidationError

from schemas.alerts import AlertEvent
from services.api.hub import AlertHub, Vector
from services.common.compacted import wait_for_partitions
from services.common.kafka import make_consumer
from services.common.settings import KafkaAccess

log = logging.getLogger(__name__)


def parse_event(value: bytes | None, where: str) -> AlertEvent | None:
    if value is None:
        return None
    try:
        return AlertEvent.model_validate_json(value)
    except ValidationError as problem:
        log.warning("alert event at %s does not parse; skipped: %s", where, problem.errors()[:1])
        return None


async def feed_hub(hub: AlertHub, kafka: KafkaAccess, topic: str, window_s: float, client_id: str, on_event=None) -> None:
    """Start `window_s` back in time (the resume horizon), then follow the topic until cancelled."""
    consumer = make_consumer(kafka, None, client_id=client_id)
    try:
        await consumer.start()  # inside the try: a failed start (broker unreachable) must still close the client
        partitions = await wait_for_partitions(kafka, topic, client_id)
        consumer.assign(partitions)
        since_ms = int((time.time() - window_s) * 1000)
        found = await consumer.offsets_for_times({tp: since_ms for tp in partitions})
        ends = await consumer.end_offsets(partitions)
        starts = []
        for tp in partitions:
            start = found[tp].offset if found.get(tp) is not None else ends[tp]
            consumer.seek(tp, start)
            starts.append(start)
        hub.begin(starts, [ends[tp] for tp in partitions])
        log.info("alert hub follows %s from offsets %s", topic, starts)
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            for tp, records in batches.items():
                for record in records:
                    delivered = hub.ingest(tp.partition, record.offset,
                                           parse_event(record.value, f"{topic}[{tp.partition}]@{record.offset}"))
                    if delivered is not None and on_event is not None:
                        on_event(delivered)
    finally:
        hub.ready = False
        await consumer.stop()


async def fetch_gap(kafka: KafkaAccess, topic: str, gaps: dict[int, tuple[int, int]], base: Vector,
                    client_id: str, timeout_s: float = 15.0) -> list[tuple[int, int, AlertEvent, Vector]]:
    """Events in the offset ranges `gaps` (partition → [from, to)), each with the resume vector after it."""
    consumer = make_consumer(kafka, None, client_id=client_id)
    await consumer.start()
    found: list[tuple[int, int, AlertEvent | None]] = []
    try:
        consumer.assign([TopicPartition(topic, p) for p in gaps])
        for partition, (start, _) in gaps.items():
            consumer.seek(TopicPartition(topic, partition), start)
        pending = dict(gaps)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while pending and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(*[TopicPartition(topic, p) for p in pending], timeout_ms=300)
            for tp, records in batches.items():
                for record in records:
                    if record.offset < pending.get(tp.partition, (0, -1))[1]:
                        found.append((tp.partition, record.offset, parse_event(record.value, f"{topic}@gap")))
            for partition in list(pending):
                if await consumer.position(TopicPartition(topic, partition)) >= pending[partition][1]:
                    del pending[partition]
        if pending:
            raise TimeoutError(f"could not read alert history for partitions {sorted(pending)}")
    finally:
        await consumer.stop()
    vector = list(base)
    result = []
    for partition, offset, event in found:
        vector[partition] = max(vector[partition], offset + 1)
        if event is not None:
            result.append((partition, offset, event, tuple(vector)))
    return result
