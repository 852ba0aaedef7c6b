"""Runs the city against a live platform: registers the fleet (register HTTP API), then publishes every round's
readings, anomalies and bad traffic through ingest HTTP, paced by the sim clock, until stopped or `duration_s`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from citystream.simulate.badtraffic import EXPECTED_REASON, BadKind
from citystream.simulate.clients import IngestClient, RegisterClient, wait_until_ready
from citystream.simulate.model import CityModel, Reading, SimConfig
from citystream.simulate.settings import SimulateSettings
from services.anomaly.labels import LabelWriter

log = logging.getLogger(__name__)
TICK_S = 0.25
GATEWAY_MAX_SENSORS = 1000  # the register's limit per gateway credential
# The worker opens a silence after k = 3 declared intervals without a reading (its default), judged by a timer on
# arrival (wall) time; one interval more for the timer and the pipeline. A replay faster than real time keeps each
# silence at least this many intervals long on the wall clock (SimConfig.silence_min_s).
SILENCE_WALL_INTERVALS = 4


@dataclass(frozen=True)
class RunOptions:
    seed: int = 7
    sensors: int = 300
    rate: float = 20.0  # readings per second of wall time (normal fleet)
    speed: float = 1.0  # sim seconds per wall second until the sim clock catches up with now
    backfill_s: float = 0.0  # the sim clock starts this far in the past (≤ the gate's 7-day horizon)
    batch_size: int = 100
    duration_s: float | None = None
    labels_path: Path = Path("labels.jsonl")
    prefix: str = "sim-"
    anomalies: bool = True
    bad_traffic: bool = True
    expire_after_s: float = 60.0  # wall seconds until the `expired` actor's window ends
    suspend_at_round: int = 10
    anomaly_first_after: int = 20  # rounds of normal behaviour before the first episode
    anomaly_spacing: int = 30  # rounds between two episode starts
    anomaly_opening_spacing: int | None = None  # rounds between the first cycle's starts (None: anomaly_spacing)

    def sim_config(self, start_t: float) -> SimConfig:
        interval_s = max(0.1, self.sensors * self.speed / self.rate)
        accelerated = self.speed > 1 and self.backfill_s > 0
        silence_min_s = SILENCE_WALL_INTERVALS * interval_s * self.speed if accelerated else 0.0
        return SimConfig(seed=self.seed, sensors=self.sensors, interval_s=interval_s, start_t=round(start_t, 3),
                         silence_min_s=silence_min_s,
                         prefix=self.prefix, anomalies=self.anomalies, bad_traffic=self.bad_traffic,
                         suspend_at_round=self.suspend_at_round, anomaly_first_after=self.anomaly_first_after,
                         anomaly_spacing=self.anomaly_spacing, anomaly_opening_spacing=self.anomaly_opening_spacing)


@dataclass
class Tally:
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)  # fleet rejections by reason (should stay empty)
    by_actor: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # bad kind → outcome
    retries: int = 0
    requests: int = 0

    def record(self, items: list[dict[str, Any]], actor: str | None) -> None:
        for item in items:
            outcome = "ACCEPTED" if item.get("status") == "accepted" else item.get("reason", "UNKNOWN")
            if actor is not None:
                self.by_actor[actor][outcome] += 1
            elif outcome == "ACCEPTED":
                self.accepted += 1
            else:
                self.rejected[outcome] += 1

    def missing_reasons(self) -> list[str]:
        """Bad kinds that never got their expected rejection (the gate let them through, or they never ran)."""
        return [kind.value for kind, reason in EXPECTED_REASON.items()
                if self.by_actor.get(kind.value, Counter())[reason.value] == 0]


class Simulation:
    def __init__(self, settings: SimulateSettings, options: RunOptions) -> None:
        self.settings, self.options = settings, options
        self.tally = Tally()
        self.wall_start = time.time()
        self.config = options.sim_config(self.wall_start - options.backfill_s)
        self.model = CityModel(self.config)
        self.register = RegisterClient(settings.register_url, settings.admin_token.get_secret_value())
        self.ingest = IngestClient(settings.ingest_url)
        self.credentials: dict[str, str] = {}  # sensor id → credential it publishes with
        self.labels = LabelWriter(options.labels_path)
        self.expires_at: float | None = None
        self._first_round = None
        self.sent_t: float | None = None  # sim time of the newest fleet reading posted so far
        self._to_suspend: list[str] = []

    def send_at(self, t: float) -> float:
        """Wall time at which a reading observed at sim time `t` goes out: accelerated, never ahead of now."""
        return max(self.wall_start + (t - self.config.start_t) / self.options.speed, t)

    def sim_now(self, wall: float) -> float:
        return min(self.config.start_t + (wall - self.wall_start) * self.options.speed, wall)

    async def setup(self) -> None:
        s = self.settings
        await wait_until_ready(self.register.http, f"{s.register_url}/readyz", s.ready_timeout_s)
        await wait_until_ready(self.ingest.http, f"{s.ingest_url}/readyz", s.ready_timeout_s)
        interval = self.config.interval_s
        gate = asyncio.Semaphore(8)

        async def ensure(declaration: dict) -> None:
            async with gate:
                await self.register.ensure_active(declaration)

        await asyncio.gather(*(ensure(spec.declaration(interval)) for spec in self.model.fleet))
        fleet_ids = [spec.sensor_id for spec in self.model.fleet]
        for chunk_start in range(0, len(fleet_ids), GATEWAY_MAX_SENSORS):
            chunk = fleet_ids[chunk_start:chunk_start + GATEWAY_MAX_SENSORS]
            credential = await self.register.issue_gateway(chunk)
            self.credentials.update(dict.fromkeys(chunk, credential))
        now = datetime.now(UTC)
        for actor in self.model.bad_actors:
            sensor_id = actor.spec.sensor_id
            if not actor.registered:
                self.credentials[sensor_id] = "sk_unregistered.c2ltdWxhdGVkLWJ1dC1uZXZlci1kZWNsYXJlZA"
                continue
            until = None
            if actor.kind is BadKind.EXPIRED:
                until = now + timedelta(seconds=self.options.expire_after_s)
                self.expires_at = until.timestamp()
            await self.register.ensure_active(actor.spec.declaration(interval, until))
            credential = await self.register.issue_credential(sensor_id)
            if actor.kind is BadKind.WRONG_KEY:
                key_id, _, secret = credential.partition(".")
                credential = f"{key_id}.{secret[::-1]}"  # the right key id with a wrong secret
            self.credentials[sensor_id] = credential
        self.labels.write({"category": "run", "seed": self.options.seed, "prefix": self.options.prefix,
                           "interval_s": interval, "start": self.config.start_t, "sensor_ids": fleet_ids})
        log.info("registered %d sensors and %d bad actors; interval %.1f s (sim), %.0f readings/s",
                 len(fleet_ids), len(self.model.bad_actors), interval, self.options.rate)

    async def wait_for_gate(self, timeout_s: float = 20.0) -> None:
        """The gate learns new credentials from the register topic within about a second; wait for that by sending
        round 0's first reading until it is admitted (the publish loop sends it again: same seq, stored once)."""
        self._first_round = self.model.next_round()
        probe = next(r for r in self._first_round.readings if r.sensor_id in self.credentials)
        deadline = time.monotonic() + timeout_s
        while True:
            answer = await self.ingest.post([probe.payload()], self.credentials[probe.sensor_id])
            if answer.status == 200:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"ingest did not admit {probe.sensor_id} within {timeout_s:.0f} s: {answer.body}")
            await asyncio.sleep(0.5)

    async def post(self, payloads: list[dict], credential: str, actor: str | None, stop: asyncio.Event) -> None:
        """Posts one batch; retries transient failures (no answer, 503) with the same seqs, so nothing is lost."""
        backoff_s = 0.2
        while True:
            try:
                answer = await self.ingest.post(payloads, credential)
            except httpx.HTTPError as problem:
                answer = None
                log.warning("ingest unreachable (%r); retrying in %.1f s", problem, backoff_s)
            self.tally.requests += 1
            if answer is not None and answer.status != 503:
                items = answer.body.get("outcomes") if isinstance(answer.body, dict) else None
                if items is None:  # refused as a whole request (e.g. 400 MALFORMED body)
                    reason = answer.body.get("reason", f"HTTP_{answer.status}") if isinstance(answer.body, dict) \
                        else f"HTTP_{answer.status}"
                    items = [{"status": "rejected", "reason": reason}] * len(payloads)
                self.tally.record(items, actor)
                return
            if stop.is_set():
                return
            self.tally.retries += 1
            await asyncio.sleep(min(backoff_s, answer.retry_after_s or backoff_s) if answer else backoff_s)
            backoff_s = min(backoff_s * 2, 5.0)

    async def run(self, stop: asyncio.Event) -> Tally:
        try:
            await self.setup()
            await self.wait_for_gate()
            await self._publish(stop)
            # The sim time the run stopped at: episodes still running then are not scored for recall. What was
            # sent, not what was due: a pipeline slower than the schedule leaves the last rounds unsent.
            stopped = self.sim_now(time.time())
            if self.sent_t is not None:
                stopped = min(stopped, self.sent_t)
            self.labels.write({"category": "end", "t": round(stopped, 3)})
        finally:
            self.labels.close()
            await self.register.close()
            await self.ingest.close()
        return self.tally

    async def _publish(self, stop: asyncio.Event) -> None:
        pending: list[tuple[float, int, Any]] = []
        order = itertools.count()
        horizon = time.time() + (self.options.duration_s or float("inf"))
        next_report = time.time() + 10
        enqueued_until = self._enqueue_round(pending, order, self._first_round)
        while not stop.is_set() and time.time() < horizon:
            now = time.time()
            while enqueued_until <= now + TICK_S:
                enqueued_until = self._enqueue_round(pending, order, self.model.next_round())
            for sensor_id in self._to_suspend:
                await self.register.set_status(sensor_id, "suspended")
                log.info("suspended %s mid-run (its readings must now be refused)", sensor_id)
            self._to_suspend.clear()
            if self.expires_at is not None and now >= self.expires_at:
                actor = next(a for a in self.model.bad_actors if a.kind is BadKind.EXPIRED)
                self.labels.write({"category": "bad_traffic", "sensor_id": actor.spec.sensor_id, "kind": "expired",
                                   "expected_reason": "SENSOR_EXPIRED", "start": self.sim_now(now), "end": None})
                self.expires_at = None
            due: dict[str, list] = defaultdict(list)
            while pending and pending[0][0] <= now:
                _, _, item = heapq.heappop(pending)
                if isinstance(item, Reading):
                    due[self.credentials[item.sensor_id]].append(item.payload())
                    self.sent_t = item.t if self.sent_t is None else max(self.sent_t, item.t)
                else:
                    actor, payloads = item
                    await self.post(payloads, self.credentials[actor.spec.sensor_id], actor.kind.value, stop)
            for credential, payloads in due.items():
                for start in range(0, len(payloads), self.options.batch_size):
                    await self.post(payloads[start:start + self.options.batch_size], credential, None, stop)
            if now >= next_report:
                next_report = now + 10
                log.info("simulate: %d admitted, fleet rejections %s, bad traffic %s", self.tally.accepted,
                         dict(self.tally.rejected), {k: dict(v) for k, v in self.tally.by_actor.items()})
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, TICK_S - (time.time() - now)))
            except TimeoutError:
                pass

    def _enqueue_round(self, pending: list, order, rnd) -> float:
        """Queues a round's sends by wall time; returns the wall time up to which everything is queued."""
        for label in rnd.labels:
            if label["category"] == "anomaly":  # wall times too: silence is judged on arrival, not sim, time
                label = {**label, "wall_start": round(self.send_at(label["start"]), 3),
                         "wall_end": round(self.send_at(label["end"]), 3)}
            self.labels.write(label)
        self._to_suspend.extend(rnd.suspend)
        for reading in rnd.readings:
            heapq.heappush(pending, (self.send_at(reading.t), next(order), reading))
        for send in rnd.bad:
            heapq.heappush(pending, (self.send_at(rnd.t + self.config.interval_s / 2), next(order),
                                     (send.actor, send.payloads)))
        return self.send_at(rnd.t + self.config.interval_s)
