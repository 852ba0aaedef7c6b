"""Records produced while a restarted Faust worker joins are each processed exactly once, and all committed.

A worker is killed after committing, restarted, and records are produced every 0.5 s while it starts, waits for
the old member's session to expire, recovers its table and joins. With Faust's stock recovery (faust-streaming
0.15.3, `SMOKE_TABLE_MANAGER=faust.tables:TableManager`) most runs on this machine lost or double-counted 1-4 of
those records on a partition, and in some the group's commit on a partition stopped advancing
(faust-streaming/faust#596): stream partitions resumed before their seek to the committed offset. The worker here
runs the anomaly worker's seek-first recovery (services/anomaly/recovery.py), which resumes them last.
"""

from __future__ import annotations

import asyncio
import signal

from aiokafka import TopicPartition
from aiokafka.admin import NewTopic

from services.common.kafka import make_admin, make_consumer
from tests.integration.test_faust_smoke import (
    produce,
    start_worker,
    stop,
    wait_for_committed,
    wait_for_counts,
)

PAIRS_DURING_JOIN = 40  # one record per key every 0.5 s: 20 s, longer than the 10 s session the join waits for
# Worker log lines that tell how a join went: generations, assignments, recovery steps.
JOIN_LOG_MARKS = ("generation", "assigned", "Revoking", "Recovery", "Resuming", "Seek", "Ready", "ERROR", "WARNING")


async def _emitted_counts(kafka, topic: str, keys: tuple[str, ...], wanted: int, timeout_s: float) -> dict:
    """Every count the worker emitted per key, read from the start of the counts topic by a fresh consumer each
    round, until each key's counts reach `wanted` or the timeout. Reading afresh (not a long-lived consumer's
    latest value) tells a record the worker never counted from one the test's own consumer did not fetch."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        emitted: dict[str, list[int]] = {key: [] for key in keys}
        consumer = make_consumer(kafka, None, topic)
        await consumer.start()
        try:
            end = await consumer.end_offsets([TopicPartition(topic, 0)])
            while await consumer.position(TopicPartition(topic, 0)) < end[TopicPartition(topic, 0)]:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        emitted.setdefault(record.key.decode(), []).append(int(record.value))
        finally:
            await consumer.stop()
        if all(max(emitted[key], default=0) >= wanted for key in keys) or loop.time() > deadline:
            return emitted
        await asyncio.sleep(1.0)


def _join_story(log_path) -> str:
    lines = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
    return "\n".join(line for line in lines if any(mark in line for mark in JOIN_LOG_MARKS))[-6000:]


async def _committed_and_end(bootstrap: str, group: str, topic: str) -> tuple[dict[int, int], dict[int, int]]:
    admin = make_admin(bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        committed = {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}
    finally:
        await admin.close()
    consumer = make_consumer(bootstrap, None)
    await consumer.start()
    try:
        end = await consumer.end_offsets([TopicPartition(topic, p) for p in (0, 1)])
    finally:
        await consumer.stop()
    return committed, {tp.partition: offset for tp, offset in end.items()}


async def test_records_produced_while_a_restarted_worker_joins_are_all_counted_and_committed(
        kafka, topic_prefix, tmp_path):
    source, counts_topic = f"{topic_prefix}smoke.in", f"{topic_prefix}smoke.counts"
    group = f"{topic_prefix}smoke-app"  # the smoke app's id
    admin = make_admin(kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(source, 2, 1), NewTopic(counts_topic, 1, 1)])
    finally:
        await admin.close()
    counts = make_consumer(kafka, None, counts_topic)
    await counts.start()
    try:
        first = start_worker(kafka, topic_prefix, tmp_path, "worker1.log")
        await produce(kafka, source, ["north", "south"] * 5)
        assert await wait_for_counts(counts, {"north": 5, "south": 5}, timeout_s=90) == {"north": 5, "south": 5}
        assert await wait_for_committed(kafka, group, source, 10, timeout_s=30) == 10
        stop(first, signal.SIGKILL)
        second = start_worker(kafka, topic_prefix, tmp_path, "worker2.log")
        try:
            for _ in range(PAIRS_DURING_JOIN):
                await produce(kafka, source, ["north", "south"])
                await asyncio.sleep(0.5)
            total = 5 + PAIRS_DURING_JOIN
            emitted = await _emitted_counts(kafka, counts_topic, ("north", "south"), total, timeout_s=60)
            await wait_for_committed(kafka, group, source, 2 * total, timeout_s=15)  # Faust commits every few s
            committed, end = await _committed_and_end(kafka, group, source)
            story = _join_story(tmp_path / "worker2.log")
            # Each record counted exactly once: every key's emitted counts are 1, 2, … total, each once (a record
            # counted twice shows as a count above `total` or a repeated one, a lost record as a missing one).
            for key in ("north", "south"):
                assert sorted(emitted[key]) == list(range(1, total + 1)), (
                    f"{key}: counts emitted {emitted[key]}; committed {committed}, end offsets {end}; "
                    f"worker log:\n{story}")
            assert committed == end, (f"the group's commit stopped short of the end: a gap Faust never commits past; "
                                      f"worker log:\n{story}")
        finally:
            stop(second, signal.SIGTERM)
    finally:
        await counts.stop()
