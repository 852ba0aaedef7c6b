"""The Kafka-native gate loop overlaps gating of the next batch with the acks of the previous one, yet commits
every batch only after its own acks, and in order."""

from __future__ import annotations

import asyncio
from collections import Counter
from types import SimpleNamespace

from aiokafka import TopicPartition

from services.ingest import gate_loop
from services.ingest.ratelimit import RateLimiter

TP = TopicPartition("raw", 0)


class FakeConsumer:
    def __init__(self, batches: list[list[int]], log: list) -> None:
        self.batches, self.log = list(batches), log

    def subscribe(self, topics: list[str], listener) -> None:
        self.log.append(("subscribe", topics))

    async def start(self) -> None: ...

    async def stop(self) -> None:
        self.log.append("stop")

    async def getmany(self, timeout_ms: int, max_records: int):
        if not self.batches:
            await asyncio.sleep(3600)  # no more records: the loop waits here until cancelled
        offsets = self.batches.pop(0)
        return {TP: [SimpleNamespace(offset=o, topic="raw", partition=0) for o in offsets]}

    async def commit(self, offsets) -> None:
        self.log.append(("commit", offsets[TP]))


class HeldPublisher:
    """Acks a publish only when the test releases it."""

    def __init__(self, log: list) -> None:
        self.log, self.releases = log, []

    async def publish(self, out) -> None:
        release = asyncio.Event()
        self.releases.append(release)
        self.log.append(("publish", out))
        await release.wait()
        self.log.append(("acked", out))


async def test_next_batch_is_gated_while_the_previous_waits_and_commits_stay_in_order(monkeypatch):
    log: list = []
    consumer = FakeConsumer([[0, 1], [2, 3], [4]], log)
    publisher = HeldPublisher(log)

    async def ready(timeout_s: float) -> None: ...

    runtime = SimpleNamespace(settings=SimpleNamespace(kafka="x", gate_app_id="g", topic=lambda n: n,
                                                    consumer_group_timing={}),
                              publisher=publisher, wait_ready=ready, limiter=RateLimiter())
    monkeypatch.setattr(gate_loop, "make_consumer", lambda *a, **k: consumer)

    def gate(runtime, records, now):
        log.append(("gated", [r.offset for r in records]))
        return [r.offset for r in records], Counter()

    monkeypatch.setattr(gate_loop, "gate_records", gate)
    loop_task = asyncio.create_task(gate_loop.run_gate_loop(runtime))

    async def until(predicate) -> None:
        for _ in range(200):
            if predicate():
                return
            await asyncio.sleep(0.005)
        raise AssertionError(log)

    await until(lambda: ("gated", [2, 3]) in log)
    assert not any(entry[0] == "commit" for entry in log if isinstance(entry, tuple)), "nothing acked yet"
    assert ("publish", [2, 3]) not in log, "batch 2 waits for batch 1's acks before it is published"
    publisher.releases[0].set()
    await until(lambda: ("commit", 2) in log and ("publish", [2, 3]) in log)
    assert log.index(("acked", [0, 1])) < log.index(("commit", 2))
    publisher.releases[1].set()
    await until(lambda: ("commit", 4) in log and ("publish", [4]) in log)
    assert [e[1] for e in log if isinstance(e, tuple) and e[0] == "commit"] == [2, 4]
    loop_task.cancel()  # batch 3 is published but not acked: it is not committed
    await asyncio.gather(loop_task, return_exceptions=True)
    assert ("commit", 5) not in log and log[-1] == "stop"
