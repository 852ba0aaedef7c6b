"""The worker's readings hot path wired in memory (judge, checkpoint, loop) over the fakes, as app.py wires it."""

from __future__ import annotations

from services.anomaly.engine import Engine
from services.anomaly.health import Health
from services.anomaly.judge import BatchJudge, Outputs
from services.anomaly.lag import ConsumerProgress
from services.anomaly.lifecycle import LifecycleConfig
from services.anomaly.outbox import Outbox
from services.anomaly.readings_loop import Checkpoint, ReadingsLoop
from services.anomaly.sensors import SensorStates
from services.common.settings import CommonSettings
from tests.unit.anomaly.fakes import FakeGroup, FakeLog, FakeProducer, FakeReader

HOT, SEASONAL = "changelog-hot", "changelog-seasonal"
OUTPUTS = Outputs(alerts="alerts", rollups="rollups", rejected="rejected", settings=CommonSettings())
DOMAINS = {f"readings.{d}": d for d in ("traffic", "energy", "waste")}


class Source:
    """A readings partition, as the worker binds it for table writes."""

    def __init__(self, topic: str, partition: int) -> None:
        self.message = self
        self.topic, self.partition = topic, partition


class DictChangelog:
    """Changelog records as the worker writes them; the tables are dicts updated once acknowledged."""

    def __init__(self, hot: dict, seasonal: dict) -> None:
        self.hot, self.seasonal = hot, seasonal
        self.persisted_offsets: dict[tuple[str, int], int] = {}  # what the stores would record as held

    def records(self, drained, outbox: Outbox) -> None:
        for sensor_id, hot, seasonal, source in drained:
            outbox.add(HOT, sensor_id.encode(), hot, partition=source.message.partition)
            if seasonal is not None:
                outbox.add(SEASONAL, sensor_id.encode(), seasonal, partition=source.message.partition)

    def apply(self, drained, acked) -> None:
        self.persisted_offsets.update(acked)
        for sensor_id, hot, seasonal, _ in drained:
            self.hot[sensor_id] = hot
            if seasonal is not None:
                self.seasonal[sensor_id] = seasonal


def recovered(producer: FakeProducer) -> tuple[dict, dict]:
    """What a restarted worker recovers: the last acknowledged changelog record per key."""
    hot, seasonal = {}, {}
    for topic, _, key, value in producer.acked:
        if topic in (HOT, SEASONAL):
            (hot if topic == HOT else seasonal)[key.decode()] = value
    return hot, seasonal


class MemoryWorker:
    def __init__(self, log: FakeLog, group: FakeGroup, producer: FakeProducer, tables: tuple[dict, dict] | None = None,
                 *, take: int = 10, interval_s: float = 0.0, resolve_after_s: float = 600.0) -> None:
        tables = tables or ({}, {})
        config = LifecycleConfig(resolve_after_s=resolve_after_s)
        self.engines = {d: Engine(d, lifecycle_config=config) for d in DOMAINS.values()}
        self.states = SensorStates(*tables, lambda domain: self.engines[domain].new_state())
        self.health, self.producer, self.group = Health(), producer, group
        self.judge = BatchJudge(self.engines, self.states, {}, OUTPUTS, Source)
        self.checkpoint = Checkpoint(self.states, DictChangelog(*tables), group, self.health, self.get_producer,
                                     interval_s)
        self.reader = FakeReader(log, take)
        self.loop = ReadingsLoop(self.reader, group, self.judge, self.checkpoint, self.health, self.get_producer,
                                 ConsumerProgress(), DOMAINS, take_max=1000, take_wait_ms=1)

    async def get_producer(self) -> FakeProducer:
        return self.producer

    async def step(self, flush: bool = True) -> int:
        """One pass of the loop: fetch, judge and send; then flush if asked. Returns the records fetched."""
        if self.loop.stale:
            await self.loop._reassign()
        batch = await self.reader.getmany(timeout_ms=1, max_records=1000)
        async with self.checkpoint.lock:
            if batch:
                await self.loop.judge_batch(batch)
            if flush:
                await self.checkpoint.flush()
        return sum(len(records) for records in batch.values())
