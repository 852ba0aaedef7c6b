"""The readings hot path in memory: batch decode → judge → outputs acked → states to the changelog (acked) →
offsets committed, in that order; a record refused for good stops the commits; a kill at any point and a restart
judge every reading exactly once into alerts; a rebalance drops what was fetched before it."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka.errors import MessageSizeTooLargeError, NotLeaderForPartitionError

from services.anomaly import outbox as outbox_module
from services.anomaly.outbox import SendFailed
from services.common.kafka_batches import partition_of
from tests.unit.anomaly.fakes import FakeGroup, FakeLog, FakeProducer
from tests.unit.anomaly.memory_worker import HOT, SEASONAL, MemoryWorker, recovered

T0 = 1_767_600_000
WASTE = "readings.waste"
BINS = [f"bin-u-{i:02d}" for i in range(6)]


def waste(sensor: str, seq: int, level: float) -> bytes:
    at = datetime.fromtimestamp(T0 + seq * 300, UTC).isoformat()
    return orjson.dumps({"sensor_id": sensor, "seq": seq, "observed_at": at, "received_at": at,
                         "register_version": 1, "domain": "waste", "metrics": {"fillingLevel": level}})


def level(sensor: int, seq: int) -> float:
    """Each bin overflows for a while every 12 readings (after a different start), then is emptied: an alert
    opens, and resolves once the level stayed normal for 600 s of reading time."""
    return 0.95 if (seq + 3 * sensor) % 12 in (5, 6) else 0.3 + 0.01 * (seq % 3)


def stream(readings_per_bin: int = 40) -> FakeLog:
    log = FakeLog()
    for seq in range(readings_per_bin):
        for i, sensor in enumerate(BINS):
            log.append(WASTE, partition_of(sensor.encode(), [0, 1, 2, 3]), sensor.encode(), waste(sensor, seq,
                                                                                                   level(i, seq)))
    return log


def partitions(log: FakeLog) -> set[tuple[str, int]]:
    return {(WASTE, p) for p in range(4)} & set(log.partitions) | {(WASTE, p) for p in range(4)}


def alert_events(producer: FakeProducer) -> list[dict]:
    return [orjson.loads(value) for topic, _, _, value in producer.acked if topic == "alerts"]


async def drain(worker: MemoryWorker, flush_every: int = 1) -> None:
    step = 0
    while await worker.step(flush=step % flush_every == 0):
        step += 1
    async with worker.checkpoint.lock:
        await worker.checkpoint.flush()


async def test_outputs_then_states_then_the_commit():
    log, events = stream(12), []
    producer, group = FakeProducer(log=events), FakeGroup(partitions(log), events)
    worker = MemoryWorker(log, group, producer, take=100)
    await worker.step()

    commits = [i for i, entry in enumerate(events) if entry[0] == "commit"]
    changelog = [i for i, entry in enumerate(events) if entry[0] == "acked" and entry[1] == HOT]
    alerts = [i for i, entry in enumerate(events) if entry[0] == "acked" and entry[1] == "alerts"]
    assert len(commits) == 1 and alerts and changelog
    assert max(alerts) < min(changelog) < max(changelog) < commits[0], "outputs, then states, then the commit"
    assert events[commits[0]][1] == {tp: len(records) for tp, records in log.partitions.items()}
    assert {key.decode() for _, topic, _, key in (events[i] for i in changelog)} == set(BINS), "one write per sensor"


async def test_the_commit_waits_until_the_changelog_has_the_states(monkeypatch):
    monkeypatch.setattr(outbox_module, "MAX_BACKOFF_S", 0.0)
    log, events = stream(3), []
    failures = {(HOT, BINS[0].encode()): [NotLeaderForPartitionError(), NotLeaderForPartitionError()]}
    producer, group = FakeProducer(failures, log=events), FakeGroup(partitions(log), events)
    await MemoryWorker(log, group, producer, take=100).step()
    first_commit = next(i for i, entry in enumerate(events) if entry[0] == "commit")
    written = [i for i, entry in enumerate(events) if entry[:2] == ("acked", HOT) and entry[3] == BINS[0].encode()]
    assert written and written[0] < first_commit, "the sensor's state was acknowledged before any commit"


async def test_the_stores_record_the_last_changelog_offset_they_hold(monkeypatch):
    """What app.ChangelogTables.apply gives each store's set_persisted_offset: a restarted worker's recovery then
    reads each changelog partition from there. A batch sent again after a retriable error counts once."""
    monkeypatch.setattr(outbox_module, "MAX_BACKOFF_S", 0.0)
    log = stream(12)
    producer = FakeProducer({(HOT, BINS[1].encode()): [NotLeaderForPartitionError()]})
    worker = MemoryWorker(log, FakeGroup(partitions(log), []), producer, take=10)
    await drain(worker)
    last_written = {(topic, partition): offset - 1 for (topic, partition), offset in producer.end_offsets.items()
                    if topic in (HOT, SEASONAL)}
    assert len(last_written) >= 2  # several changelog partitions, written over several flushes
    assert worker.checkpoint.writer.persisted_offsets == last_written


async def test_a_refused_output_stops_commits_and_turns_the_worker_not_ready():
    log, events = stream(12), []
    opened_bin = BINS[0].encode()
    producer = FakeProducer({("alerts", opened_bin): [MessageSizeTooLargeError()]}, log=events)
    group = FakeGroup(partitions(log), events)
    worker = MemoryWorker(log, group, producer, take=100)
    with pytest.raises(SendFailed):
        await worker.step()
    assert worker.health.refused and "refused" in worker.health.refused
    async with worker.checkpoint.lock:
        await worker.checkpoint.flush()  # a later flush (the quiet flusher's) commits nothing either
    assert not [entry for entry in events if entry[0] == "commit"], "nothing committed past the lost alert"
    assert not [entry for entry in events if entry[:2] == ("acked", HOT)], "nor any state written"
    await asyncio.wait_for(worker.loop.run(), timeout=2)  # the loop stops at once: no more fetching or commits


@pytest.mark.parametrize("kill_after_steps, kill_in", [(1, "commit"), (2, "judge"), (3, "commit"), (5, "judge"),
                                                       (7, "commit"), (4, "changelog"), (9, "changelog")])
async def test_a_kill_anywhere_and_a_restart_judge_every_reading_once_into_alerts(kill_after_steps, kill_in):
    """Reference: one worker judges the stream. Then: a worker is killed after some batches, either between
    judging and its flush ("judge": outputs acked, states not written), inside the flush while the states are
    written ("changelog") or after they were written but before the commit ("commit"); a new worker recovers the acknowledged changelog and resumes at the
    committed offsets. The alerts (by event id) are the same, and no alert is opened twice."""
    log = stream(40)
    reference = FakeProducer()
    await drain(MemoryWorker(log, FakeGroup(partitions(log), []), reference, take=7), flush_every=2)
    expected = {(e["event_id"], e["alert_id"], e["event_type"]) for e in alert_events(reference)}
    assert sum(t == "opened" for _, _, t in expected) >= 6, "the stream opens alerts for every bin"

    class Killed(BaseException):  # not an error the worker handles: the process is gone
        pass

    producer, events = FakeProducer(), []
    group = FakeGroup(partitions(log), events)
    first = MemoryWorker(log, group, producer, take=7)
    for _ in range(kill_after_steps - 1):
        await first.step(flush=True)
    if kill_in == "judge":
        await first.step(flush=False)
        await first.checkpoint.settle()  # its outputs are acknowledged; then the process is gone
    elif kill_in == "changelog":
        send_batch = producer.send_batch

        async def killed_at_changelog(batch, topic, partition):
            if topic == HOT:
                raise Killed()
            return await send_batch(batch, topic, partition)

        producer.send_batch = killed_at_changelog
        with pytest.raises(Killed):
            await first.step(flush=True)
        producer.send_batch = send_batch
    else:
        async def killed_at_commit(offsets):
            raise Killed()

        group.commit, saved = killed_at_commit, group.commit
        with pytest.raises(Killed):
            await first.step(flush=True)
        group.commit = saved
    second = MemoryWorker(log, group, producer, recovered(producer), take=7)
    await drain(second, flush_every=2)

    got = alert_events(producer)
    assert {(e["event_id"], e["alert_id"], e["event_type"]) for e in got} == expected, "no alert lost or new"
    opened = defaultdict(set)
    for event in got:
        if event["event_type"] == "opened":
            opened[event["alert_id"]].add(event["event_id"])
    assert all(len(ids) == 1 for ids in opened.values()), "no alert opened twice"
    assert group.committed == {tp: len(records) for tp, records in log.partitions.items()}


async def test_records_fetched_before_a_rebalance_are_not_judged_and_what_was_judged_is_committed():
    log, events = stream(6), []
    producer, group = FakeProducer(log=events), FakeGroup(partitions(log), events)
    worker = MemoryWorker(log, group, producer, take=2)
    await worker.step(flush=False)  # judged, outputs handed over, not yet committed
    assert worker.checkpoint.in_flight is not None and not group.committed
    await worker.checkpoint.settle()
    judged = dict(worker.checkpoint.offsets)
    await worker.step(flush=False)  # the next batch is in flight when the rebalance begins
    judged = {**judged, **{tp: len(records[:4]) for tp, records in log.partitions.items()}}
    await worker.loop.revoked()  # Faust's revoke callback
    assert group.committed == judged, "the revoke waited for the batch in flight, wrote the states, committed"
    batch = await worker.reader.getmany(timeout_ms=1, max_records=1000)
    assert batch and worker.loop.stale, "fetched after the revoke began: the loop drops it (run checks `stale`)"
    worker.loop.stale = False
    group.rebalancing = True
    worker.loop.stale = True
    task = asyncio.create_task(worker.loop._reassign())
    await asyncio.sleep(0.1)
    assert not task.done(), "no reassignment while the group rebalances (tables not recovered)"
    group.rebalancing = False
    await asyncio.wait_for(task, timeout=2)
    assert worker.reader.positions == {tp: group.committed.get(tp, 0) for tp in partitions(log)}, \
        "the reader resumes every partition at the committed offset"
