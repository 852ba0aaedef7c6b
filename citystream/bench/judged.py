"""Detection progress during a benchmark phase: readings produced to the readings topics (log-end offsets) against
readings judged by the anomaly workers (their `citystream_anomaly_readings_total`), the lag between the two, and a
gate that holds the load generator back while the readings it sent run too far ahead of detection, and the
figures of a detected phase from them.

The counter is read from each worker's /metrics (what `python -m services.anomaly worker` exports today), the
offsets from the broker, so nothing here depends on how a worker judges its readings.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from citystream.bench.load import LoadResult
from services.common.kafka import topic_partitions
from services.common.settings import KafkaAccess

JUDGED_COUNTER = "citystream_anomaly_readings_total"
DETECTED_LAG_TARGET_S = 2.0  # the detected figure holds when the workers' lag at the end is at most this much input
E2E_DETECTED_TARGET_PER_S = 30_000  # issue 13's targets, reported as met or not (nothing asserts a timing)


def judged_total(metrics_text: str) -> float:
    """Sum of the judged-readings counter's samples (every domain) in a Prometheus text exposition."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics_text.splitlines()
               if line.startswith(JUDGED_COUNTER) and not line.startswith(JUDGED_COUNTER + "_created"))


@dataclass
class Progress:
    """Readings produced and judged since `start()`; lag = produced − judged (never below 0)."""

    produced: int = 0
    judged: float = 0.0
    at: float = 0.0  # wall time of the sample

    @property
    def lag(self) -> int:
        return max(0, self.produced - int(self.judged))


class JudgedProgress:
    def __init__(self, kafka: KafkaAccess, topics: list[str], worker_urls: list[str]) -> None:
        self.kafka, self.topics, self.worker_urls = kafka, topics, worker_urls
        self._consumer: AIOKafkaConsumer | None = None
        self._client: httpx.AsyncClient | None = None
        self._partitions: list[TopicPartition] = []
        self._last_counter: dict[str, float] = {}  # a worker that does not answer keeps its last value
        self._base_produced = 0
        self._base_judged = 0.0

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(**self.kafka.client_options(), group_id=None, enable_auto_commit=False)
        await self._consumer.start()
        self._client = httpx.AsyncClient(timeout=2.0)
        self._partitions = await topic_partitions(self._consumer, self.topics)
        self._base_produced = await self._produced()
        self._base_judged = await self._judged()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._client is not None:
            await self._client.aclose()

    async def _produced(self) -> int:
        ends = await self._consumer.end_offsets(self._partitions)
        return sum(ends.values())

    async def _judged(self) -> float:
        async def one(url: str) -> None:
            try:
                response = await self._client.get(url + "/metrics")
                self._last_counter[url] = judged_total(response.text)
            except httpx.HTTPError:
                pass

        await asyncio.gather(*(one(url) for url in self.worker_urls))
        return sum(self._last_counter.values())

    async def sample(self) -> Progress:
        produced, judged = await asyncio.gather(self._produced(), self._judged())
        return Progress(produced - self._base_produced, judged - self._base_judged, time.time())

    async def wait_judged(self, timeout_s: float, interval_s: float = 0.25) -> Progress:
        """Samples until every reading produced so far is judged (or the timeout); the last sample."""
        deadline = time.monotonic() + timeout_s
        while True:
            progress = await self.sample()
            if progress.lag == 0 or time.monotonic() > deadline:
                return progress
            await asyncio.sleep(interval_s)


@dataclass
class LagGate:
    """Admission of the load generator's batches: a batch is sent only while the readings sent in the phase and not
    yet judged stay within `max_lag_s` of the measured judging rate (at least `min_budget` readings). Below the
    workers' capacity it never holds anything back; above it, it turns an unbounded backlog into the rate detection
    sustains. `held_s` is how long the load generator was held back.

    Readings the ingest refused (the load's deliberately bad ones) never reach a worker: `not_admitted` takes them
    out of what is waiting to be judged. Counted as waiting, they shrank the budget through the phase (1 % of 1.7 M
    readings is 17,000 of a 28,000-reading budget by its end) and held the load back while the workers idled."""

    progress: JudgedProgress
    max_lag_s: float = 1.0
    min_budget: int = 2000
    initial_budget: int = 10_000
    interval_s: float = 0.2
    window_s: float = 5.0  # judging rate over this long: a worker judges in bursts (batches, flushes, CPU stalls)
    sent: int = 0  # readings sent to the ingest and admitted, or not answered yet
    judged: float = 0.0
    rate_per_s: float = 0.0
    held_s: float = 0.0
    samples: list[Progress] = field(default_factory=list)
    _waiting: int = 0

    @property
    def budget(self) -> int:
        if not self.rate_per_s:
            return max(self.min_budget, self.initial_budget)
        return max(self.min_budget, int(self.max_lag_s * self.rate_per_s))

    async def room(self, readings: int) -> None:
        """Waits until `readings` more fit in the budget, then counts them as sent."""
        self._waiting += 1
        try:
            while self.sent - self.judged + readings > self.budget and self.sent > self.judged:
                await asyncio.sleep(self.interval_s / 2)
        finally:
            self._waiting -= 1
        self.sent += readings

    def not_admitted(self, readings: int) -> None:
        self.sent -= readings

    async def run(self) -> None:
        """Samples progress until cancelled: the judging rate over the last `window_s` sets the budget. A short
        window lets a burst (a stalled worker catching up) inflate the budget: a 2 s window let the lag at the end
        reach 3 s of input in a contended run."""
        while True:
            began = time.monotonic()
            progress = await self.progress.sample()
            self.samples.append(progress)
            self.judged = progress.judged
            window = [p for p in self.samples if p.at >= progress.at - self.window_s]
            if len(window) >= 2 and window[-1].at > window[0].at:
                self.rate_per_s = (window[-1].judged - window[0].judged) / (window[-1].at - window[0].at)
            self.samples = window
            await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - began)))
            if self._waiting:
                self.held_s += time.monotonic() - began


def detected_books(load: LoadResult, books: dict[str, Any], at_end: Progress, done: Progress, *,
                   anomaly_workers: int, held_s: float) -> dict[str, Any]:
    """The figures of a detected phase (books of `phase_books` + the workers' progress sampled when the load ended
    and when they had judged everything, or gave up): readings stored *and* judged per second, from the phase's
    start until both the sink and the workers were done; the lag at the end of the load, in readings and in
    seconds of that phase's input."""
    input_per_s = at_end.produced / load.seconds
    judged_s = done.at - load.started
    both = min(books["stored"], int(min(done.judged, done.produced)))
    lag_s = at_end.lag / input_per_s if input_per_s else None
    return {"anomaly_workers": anomaly_workers,
            "e2e_detected_readings_per_s": round(both / max(1e-9, books["drained_s"], judged_s)),
            "judged_during_load_per_s": round(at_end.judged / load.seconds),
            "produced_per_s": round(input_per_s), "lag_end_readings": at_end.lag,
            "lag_end_s": None if lag_s is None else round(lag_s, 2),
            "lag_end_within_target": lag_s is not None and lag_s <= DETECTED_LAG_TARGET_S,
            "judged_s": round(judged_s, 2), "unjudged_after_wait": done.lag,
            "load_held_back_s": round(held_s, 1)}


def scale_out_rows(phases: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored-and-judged readings/s per anomaly worker count, side by side (one row per detected phase)."""
    rows = [phases[name] for name in ("detected", "detected_scale_out") if name in phases]
    return [{"anomaly_workers": p["anomaly_workers"], "e2e_detected_readings_per_s": p["e2e_detected_readings_per_s"],
             "judged_during_load_per_s": p["judged_during_load_per_s"], "lag_end_s": p["lag_end_s"],
             "load_held_back_s": p["load_held_back_s"],
             "anomaly_cpu_us_per_reading": p.get("cpu_us_per_reading", {}).get("anomaly")}
            for p in sorted(rows, key=lambda p: p["anomaly_workers"])]
