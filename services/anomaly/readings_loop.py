"""The worker's readings hot path: the three readings topics fetched in batches by a plain aiokafka consumer, judged
(services/anomaly/judge.py), their outputs acknowledged, and their offsets committed only after the states they
changed reached the changelog (`Checkpoint`).

Partitions: the readings topics stay in the Faust app's consumer group, so Faust's assignor keeps giving a worker
partition p of every readings topic together with partition p of both changelog-backed tables, of the ticks and
of the actions topic (all have 4 partitions and are keyed by sensor id), and Faust recovers those table partitions
as before. Only the fetching moves: Faust's own fetcher leaves the readings partitions alone (app.py), and this
loop's group-less reader is assigned exactly the readings partitions of the group's current assignment, once
Faust has recovered their tables; it starts each at the group's committed offset. Offsets are committed through
the group's member (Faust's consumer), so a commit from a stale generation is refused by the broker.

A rebalance: Faust's revoke callback waits for `ReadingsLoop.revoked`, which takes the judging lock (no batch is
half judged or half sent), writes every changed state, commits what is judged, and marks the assignment stale;
records fetched before it are dropped unjudged. After the new assignment is recovered, the reader is reassigned
and sought to the committed offsets (which the old owner committed in its revoke callback, or which a killed
owner left behind: its uncommitted readings are read again and judged against the state of its last flush, whose
`seq` tells a reading judged already from a new one).

Order of durability, per flush: outputs of every judged batch acknowledged (before the batch counts as judged)
→ changed states written to the changelogs and acknowledged → held Faust events (ticks, actions) acked and the
readings offsets committed. A `kill -9` at any point therefore never commits a reading whose state is lost, and a
reading judged again after a restart finds its state's `seq` at or past it (a duplicate: no second alert).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any, Protocol

from aiokafka import TopicPartition

from services.anomaly.health import Health
from services.anomaly.judge import BatchJudge, Tally
from services.anomaly.lag import ConsumerProgress
from services.anomaly.outbox import Outbox, SendFailed
from services.anomaly.sensors import SensorStates

log = logging.getLogger(__name__)

Partition = tuple[str, int]  # (topic, partition)


class Group(Protocol):
    """What the loop needs from the consumer group that owns the partitions (Faust's, in the worker)."""

    def ready_assignment(self) -> set[Partition] | None:
        """The readings partitions assigned, once their tables are recovered; None while rebalancing."""

    async def commit(self, offsets: dict[Partition, int]) -> None: ...

    async def resume_offsets(self, partitions: list[Partition]) -> dict[Partition, int]:
        """Where each partition resumes: the group's committed offset, else the log start."""


class ChangelogWriter(Protocol):
    def records(self, drained: list[tuple[str, bytes, bytes | None, Any]], outbox: Outbox) -> None:
        """Queue the changelog records of drained states."""

    def apply(self, drained: list[tuple[str, bytes, bytes | None, Any]], acked: dict[tuple[str, int], int]) -> None:
        """Update the local table stores once the changelog has them (`acked`: the last changelog offset
        acknowledged per (topic, partition))."""


class Checkpoint:
    """Sensor states to the changelog, then the acks and commits they allow. Every caller holds `lock` around its
    judge-and-send and around `flush`, so a flush never writes a state whose outputs are not acknowledged yet."""

    def __init__(self, states: SensorStates, writer: ChangelogWriter, group: Group, health: Health,
                 producer: Callable[[], Awaitable[Any]], interval_s: float) -> None:
        self.states, self.writer, self.group, self.health = states, writer, group, health
        self.producer, self.interval_s = producer, interval_s
        self.lock = asyncio.Lock()
        self.offsets: dict[Partition, int] = {}  # readings judged, outputs acked → next offset, to commit
        self.held: list[Any] = []  # Faust events (ticks, actions) judged, outputs acked, to ack
        self.in_flight: asyncio.Task | None = None  # the last readings batch's outputs, being acknowledged
        self.last = time.monotonic()

    def pending(self) -> bool:
        return bool(self.offsets or self.held or self.states.dirty or self.in_flight)

    async def settle(self) -> None:
        """Wait until the readings batch in flight is acknowledged (its offsets then wait for the flush); raises
        SendFailed if its outputs were refused."""
        task, self.in_flight = self.in_flight, None
        if task is not None:
            await task

    def due(self) -> bool:
        return self.pending() and time.monotonic() - self.last >= self.interval_s

    async def flush(self) -> None:
        """Write every changed state once and await the changelog's acks; then ack and commit. Hold `lock`."""
        await self.settle()  # every state about to be written is one whose outputs are acknowledged
        if self.health.refused:
            return  # an output was refused for good: nothing may be committed past it
        drained, offsets, held = self.states.drain(), self.offsets, self.held
        self.offsets, self.held = {}, []
        if drained:
            outbox = Outbox()
            self.writer.records(drained, outbox)
            try:
                acked = await outbox.send(await self.producer())
            except SendFailed as problem:
                self.health.refuse(f"sensor states not written: {problem}")
                raise
            self.writer.apply(drained, acked)
        for event in held:
            event.ack()
        if offsets:
            await self.group.commit(offsets)
        self.last = time.monotonic()

    async def flush_when_quiet(self) -> None:
        """Flushes when no batch comes (a quiet stream; a rebalance or shutdown waiting for held acks)."""
        while True:
            await asyncio.sleep(self.interval_s / 4)
            try:
                if self.due():
                    async with self.lock:
                        await self.flush()
            except SendFailed:
                return
            except Exception:
                log.exception("flushing sensor states failed; retrying")


class ReadingsLoop:
    def __init__(self, reader, group: Group, judge: BatchJudge, checkpoint: Checkpoint, health: Health,
                 producer: Callable[[], Awaitable[Any]], progress: ConsumerProgress, domains: dict[str, str], *,
                 take_max: int, take_wait_ms: int) -> None:
        """`reader`: a group-less aiokafka consumer (assign/seek/getmany); `domains`: readings topic → domain."""
        self.reader, self.group, self.judge, self.checkpoint = reader, group, judge, checkpoint
        self.health, self.producer, self.progress, self.domains = health, producer, progress, domains
        self.take_max, self.take_wait_ms = take_max, take_wait_ms
        self.stale = True  # the reader's assignment must be (re)taken from the group
        self.assigned: list[Partition] = []

    async def revoked(self) -> None:
        """The group is rebalancing: finish what is judged (states written, offsets committed) while the
        partitions are still ours, and judge nothing fetched before this."""
        self.stale = True
        async with self.checkpoint.lock:
            try:
                await self.checkpoint.flush()
            except SendFailed:
                pass  # not ready from now on (health); nothing committed

    async def run(self) -> None:
        while not self.health.refused:
            if self.stale:
                await self._reassign()
                continue
            if not self.assigned:
                await asyncio.sleep(self.take_wait_ms / 1000)
                continue
            try:
                batch = await self.reader.getmany(timeout_ms=self.take_wait_ms, max_records=self.take_max)
            except Exception:  # nothing of it judged: start again from the committed offsets
                log.exception("fetching readings failed; resuming from the committed offsets")
                self.stale = True
                await asyncio.sleep(1.0)
                continue
            async with self.checkpoint.lock:
                if self.stale:
                    continue  # fetched before a rebalance: whoever owns them next reads them from the commit
                try:
                    if batch:
                        await self.judge_batch(batch)
                    if self.checkpoint.due():
                        await self.checkpoint.flush()
                except SendFailed:
                    break
        log.error("readings loop stopped: %s", self.health.refused)

    async def judge_batch(self, batch: dict) -> None:
        """Judge every partition's records while the previous batch's outputs are being acknowledged (the broker's
        time, not this process's CPU), then hand this batch's outputs over; once acknowledged, the batch waits for
        the next flush to be committed. Hold `checkpoint.lock`.

        Batches are handed over in order, and a flush first waits for the batch in flight: a state is never written
        before the outputs of the readings that changed it are acknowledged."""
        producer = await self.producer()  # before judging: a judged batch must reach the broker or stop commits
        outbox, tally, now = Outbox(), Tally(), time.time()
        offsets: dict[Partition, int] = {}
        for tp, records in batch.items():
            if not records:
                continue
            self.judge.readings(self.domains[tp.topic], tp.topic, tp.partition, records, outbox, now, tally)
            last = records[-1].offset
            offsets[(tp.topic, tp.partition)] = last + 1
            self.progress.judged((tp.topic, tp.partition), last)  # judged, rejected or failed alike: done
        await self.checkpoint.settle()
        self.checkpoint.in_flight = asyncio.create_task(self._send(producer, outbox, offsets, tally))

    async def _send(self, producer, outbox: Outbox, offsets: dict[Partition, int], tally: Tally) -> None:
        try:
            await outbox.send(producer)
        except SendFailed as problem:
            self.health.refuse(f"outputs of judged readings refused: {problem}")
            raise
        finally:
            tally.export()
        self.checkpoint.offsets.update(offsets)

    async def _reassign(self) -> None:
        partitions = self.group.ready_assignment()
        while partitions is None:
            await asyncio.sleep(0.05)
            partitions = self.group.ready_assignment()
        self.stale = False  # a revoke from here on marks it stale again
        self.assigned = sorted(partitions)
        self.reader.assign([TopicPartition(*tp) for tp in self.assigned])
        if self.assigned:
            resume = await self.group.resume_offsets(self.assigned)
            for tp in self.assigned:
                self.reader.seek(TopicPartition(*tp), resume[tp])
        log.info("judging readings partitions %s", self.assigned)


def readings_partitions(assignment: Iterable[Hashable], topics: frozenset[str]) -> set[Partition]:
    return {(tp.topic, tp.partition) for tp in assignment if tp.topic in topics}
