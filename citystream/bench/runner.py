"""`citystream bench`: a fresh database and topic prefix, the services as subprocesses, then the phases —
HTTP ingest at full load, the Kafka-native path, the raw ceiling, HTTP at half load, HTTP with the anomaly workers
judging (stored *and* judged), reading→alert latency at half of that, the same with more workers, batch sizes,
register-view scale points, the detector micro-benchmark — and one JSON result.

Every phase that sends readings is accounted (acknowledged set against stored set), and a fixed share of the load
is bad readings, so rejections by reason are measured too (answers and the `rejections` table).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

from citystream.bench import accounting, alerts, ceiling, scale
from citystream.bench.fleet import BenchFleet, register_fleet
from citystream.bench.judged import (
    E2E_DETECTED_TARGET_PER_S,
    JudgedProgress,
    LagGate,
    detected_books,
    scale_out_rows,
)
from citystream.bench.load import LoadResult, http_load, kafka_load, percentile
from citystream.bench.processes import Service, anomaly_group, platform_services, sink_group
from citystream.bench.usage import (
    ProcessTree,
    cpu_by_component,
    own_process,
    process_table,
    runtime_processes,
    us_per_reading,
)
from citystream.simulate.clients import RegisterClient
from citystream.simulate.settings import SimulateSettings
from schemas.common import Domain
from schemas.topics import ALERTS, RAW_READINGS, readings_topic
from services.common.collector import settle
from services.common.db import create_database, drop_database
from services.common.kafka import create_topics, delete_topics_with_prefixes, topic_partitions
from services.common.migrate import migrate

log = logging.getLogger(__name__)
SEQ_SPAN = 10**11  # each phase numbers its readings in its own seq range, so accounting is per phase
# Seq ranges (× SEQ_SPAN): 0 probe bins, 1 HTTP, 2 Kafka-native, 3 alert-phase load, 4 detected (HTTP with the
# anomaly workers), 5 detected with the scale-out worker count, 8 half load, 9 admission probe, 10 + i batch size i.
BATCH_PHASE_BASE = 10
ALERT_P99_TARGET_MS = 500.0  # issue 13's target, reported as met or not (nothing asserts a timing)


@dataclass(frozen=True)
class BenchOptions:
    phase_s: float = 30.0
    sensors: int = 500
    batch: int = 1000
    connections: int = 8
    probes: int = 40  # waste bins that overflow one by one, 0.5 s apart, in the alert phase
    batch_sizes: tuple[int, ...] = (1, 100, 1000)
    batch_phase_s: float = 8.0
    half_load_s: float = 15.0
    scale_points: tuple[int, ...] = (1_000, 100_000)
    ceiling_records: int = 200_000
    kafka_max_records: int = 300_000  # the producer outruns the gate ~10×: bound the backlog it must drain
    bad_every: int = 100  # every 100th reading of the HTTP and Kafka load is a bad one (1 %); 0: none
    alert_settle_s: float = 20.0  # how long after the last probe its alerts are waited for
    detected_phase_s: float = 60.0  # HTTP load with the anomaly workers judging (stored *and* judged)
    anomaly_workers: int = 1  # anomaly worker processes (one consumer group) in the detected and alert phases
    scale_out_workers: int = 2  # a second detected phase with this many workers; 0 (or = anomaly_workers): none
    http_workers: int = 1  # ingest-http processes (the load's connections are spread over them)
    sink_workers: int = 1  # ingest-sink processes (one consumer group)
    max_lag_s: float = 1.0  # the lag gate: sent-but-not-judged readings stay within this much of the judging rate
    detected_drain_s: float = 120.0  # longest wait after the load for the workers to judge what is left
    detectors: bool = True  # run the detector micro-benchmark (services.anomaly.bench)
    results_dir: Path = Path("bench/results")
    logs_dir: Path = Path(".citystream/bench")
    state_dir: Path = Path(".citystream")  # the local runtime's: Kafka's and PostgreSQL's pid files


class Sampler:
    """Samples CPU and peak memory of every process tree twice a second, in a thread (the event loop is busy)."""

    def __init__(self, services: dict[str, Service], others: list[ProcessTree]) -> None:
        self.services, self.others = services, others
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        table = process_table()
        for service in list(self.services.values()):  # the runner adds anomaly workers while this runs
            service.sample(table)
        for tree in self.others:
            tree.sample(table)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._sample()

    def __enter__(self) -> Self:
        for tree in self.others:
            tree.begin()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _per_s(counts: dict[str, int], seconds: float) -> dict[str, float]:
    return {reason: round(n / max(1e-9, seconds), 1) for reason, n in sorted(counts.items())}


def phase_books(load: LoadResult, stored: int, last_seen: float, books: accounting.Accounting,
                rejections_stored: dict[str, int]) -> dict[str, Any]:
    """The figures of one load phase: rates, ack latency (requests without an answer count as slower than any
    answer), outcomes by reason from the answers and from the `rejections` table, and its books."""
    return {"seconds": round(load.seconds, 1), "sent": load.sent, "acked": len(load.accepted_keys),
            "acked_per_s": round(load.acked_per_s), "stored": stored,
            "stored_per_s": round(stored / max(1e-9, last_seen - load.started)),
            "drained_s": round(last_seen - load.started, 2),
            "ack_p50_ms": _ms(percentile(load.latencies_ms, 50, load.failed_requests)),
            "ack_p99_ms": _ms(percentile(load.latencies_ms, 99, load.failed_requests)),
            "requests": len(load.latencies_ms) + load.failed_requests, "requests_unanswered": load.failed_requests,
            "rejected": dict(load.rejected), "rejected_per_s": _per_s(load.rejected, load.seconds),
            "rejections_stored": rejections_stored,
            "rejections_stored_per_s": _per_s(rejections_stored, load.seconds),
            "bad_sent": load.bad_sent, "bad_accepted": load.bad_accepted,
            "errors": dict(load.errors), "lost": books.lost, "duplicates": books.duplicates,
            "stored_not_acked": books.unexpected}


def summary(phases: dict[str, dict[str, Any]], ceilings: dict[str, float], alert: dict[str, Any]) -> dict[str, Any]:
    """The headline figures from the phases (each with the keys of `phase_books`), the raw ceilings measured in
    the same run, and the alert probes. Lost and duplicates are summed over every phase that sent readings."""
    http, kafka = phases["http"], phases["kafka"]
    raw = min(ceilings["kafka_produce_consume"], ceilings["copy"])
    lost = sum(p["lost"] for p in phases.values())
    duplicates = sum(p["duplicates"] for p in phases.values())
    p99 = percentile(alert["latencies_ms"], 99, alert["missing"])
    p50 = percentile(alert["latencies_ms"], 50, alert["missing"])

    def beyond(value: float | None) -> str | None:
        if value is not None or not (alert["latencies_ms"] or alert["missing"]):
            return None
        return f"> {alert['wait_s'] * 1000:.0f} ms (falls among the {alert['missing']} missing probes)"

    detected = phases.get("detected", {})
    return {
        "e2e_readings_per_s": http["stored_per_s"], "kafka_path_readings_per_s": kafka["stored_per_s"],
        "e2e_detected_readings_per_s": detected.get("e2e_detected_readings_per_s"),
        "e2e_detected_lag_end_s": detected.get("lag_end_s"),
        "e2e_detected_lag_end_readings": detected.get("lag_end_readings"),
        "e2e_detected_lag_within_target": detected.get("lag_end_within_target"),
        "e2e_detected_anomaly_workers": detected.get("anomaly_workers"),
        "e2e_detected_target_met": (detected.get("e2e_detected_readings_per_s") or 0) >= E2E_DETECTED_TARGET_PER_S
        and bool(detected.get("lag_end_within_target")),
        "alert_latency_target_met": p99 is not None and p99 <= ALERT_P99_TARGET_MS,
        "anomaly_workers_scale_out": scale_out_rows(phases),
        "cpu_us_per_reading": detected.get("cpu_us_per_reading", {}),
        "cpu_us_per_reading_without_detection": http.get("cpu_us_per_reading", {}),
        "raw_ceiling_readings_per_s": round(raw),
        "raw_kafka_produce_consume_per_s": round(ceilings["kafka_produce_consume"]),
        "raw_kafka_send_per_record_per_s": round(ceilings["kafka_send_per_record"]),
        "raw_copy_rows_per_s": round(ceilings["copy"]),
        "e2e_fraction_of_ceiling": round(http["stored_per_s"] / raw, 3) if raw else None,
        "kafka_path_fraction_of_ceiling": round(kafka["stored_per_s"] / raw, 3) if raw else None,
        "http_acked_readings_per_s": http["acked_per_s"], "kafka_produced_readings_per_s": kafka["acked_per_s"],
        "ingest_ack_p50_ms": http["ack_p50_ms"], "ingest_ack_p99_ms": http["ack_p99_ms"],
        "alert_latency_p50_ms": _ms(p50), "alert_latency_p99_ms": _ms(p99),
        "alert_latency_p50_beyond": beyond(p50), "alert_latency_p99_beyond": beyond(p99),
        "alert_probes": alert["probes"], "alert_probes_missing": alert["missing"],
        "alert_probes_not_admitted": alert["not_admitted"], "alert_wait_s": alert["wait_s"],
        "lost": lost, "duplicates": duplicates,
        "stored_not_acked": sum(p["stored_not_acked"] for p in phases.values()),
        "readings_accounted": sum(p["acked"] for p in phases.values()),
        "phases_accounted": sorted(phases),
        "bad_readings_sent": sum(p["bad_sent"] for p in phases.values()),
        "bad_readings_accepted": sum(p["bad_accepted"] for p in phases.values()),
        "rejections_per_s": {"http_answers": http["rejected_per_s"], "http_stored": http["rejections_stored_per_s"],
                             "kafka_stored": kafka["rejections_stored_per_s"]},
    }


class Bench:
    def __init__(self, settings: SimulateSettings, options: BenchOptions, console: Console) -> None:
        self.settings, self.options, self.console = settings, options, console
        self.run_id = uuid.uuid4().hex[:8]
        self.prefix = f"bench.{self.run_id}."
        self.result: dict[str, Any] = {"run_id": self.run_id}
        self.services: dict[str, Service] = {}
        self.others: list[ProcessTree] = []  # Kafka, PostgreSQL, the load generator
        self.phases: dict[str, dict[str, Any]] = {}
        self.workers: dict[str, Service] = {}  # the anomaly workers running now

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def _components(self) -> dict[str, dict[str, float]]:
        """CPU s, peak RSS and processes per component over the run: the processes of a role summed (their peak
        RSS summed too, an upper bound), then the broker, the database and the load generator."""
        components: dict[str, dict[str, float]] = {}
        for service in self.services.values():
            if service.usage is None:
                continue
            figures, into = service.usage.figures(), components.setdefault(service.role, {})
            for key, value in figures.items():
                into[key] = round(into.get(key, 0) + value, 1)
        components.update({tree.name: tree.figures() for tree in self.others})
        return components

    def _cpu(self) -> dict[str, float]:
        """CPU seconds so far per component (sampled now)."""
        trees = [(s.role, s.usage) for s in list(self.services.values()) if s.usage is not None]
        return cpu_by_component(trees + [(tree.name, tree) for tree in self.others])

    @property
    def ingest_urls(self) -> list[str]:
        return [s.url for s in self.services.values() if s.role == "ingest-http"]

    async def run(self) -> dict[str, Any]:
        began = time.monotonic()
        options, admin_url = self.options, self.settings.database_url
        self.result["started_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        # The machine may be shared: its 1-minute load average before and after says how much else ran.
        self.result["load_average_1m_at_start"] = round(os.getloadavg()[0], 2)
        self.db_url = await create_database(admin_url, "cs_bench_")
        try:
            await migrate(self.db_url)
            await create_topics(self.settings.kafka, prefix=self.prefix)
            self.services = platform_services(
                bootstrap=self.settings.kafka_bootstrap, database_url=self.db_url, topic_prefix=self.prefix,
                run_id=self.run_id, logs_dir=options.logs_dir / self.run_id,
                roles=("register", "ingest-http", "ingest-gate", "ingest-sink"),
                instances={"ingest-http": options.http_workers, "ingest-sink": options.sink_workers})
            for service in self.services.values():
                service.start()
            for service in list(self.services.values()):
                await asyncio.to_thread(service.wait_ready, 120)
            found = runtime_processes(options.state_dir)
            self.others = [ProcessTree(name, pid) for name, pid in found.items() if pid is not None] + [own_process()]
            with Sampler(self.services, self.others):
                await self._phases()
            self.result["components"] = self._components()
            self.result["components_not_found"] = sorted(name for name, pid in found.items() if pid is None)
        finally:
            for service in self.services.values():
                await asyncio.to_thread(service.stop)
            await drop_database(admin_url, self.db_url)
            await self._delete_topics()
            self.result["elapsed_s"] = round(time.monotonic() - began, 1)
            self.result["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
        # Only once the services have stopped: the detector loop is CPU-bound, and the anomaly worker would still be
        # judging the alert phase's backlog on the same two cores.
        if options.detectors:
            self.result["detectors"] = await asyncio.to_thread(detector_benchmark)
            self.result["elapsed_s"] = round(time.monotonic() - began, 1)
        return self.result

    async def _delete_topics(self) -> None:
        try:
            # The run's catalogue topics, and the changelogs of its anomaly worker and Kafka-native gate (Faust apps).
            await delete_topics_with_prefixes(self.settings.kafka, [
                self.prefix, f"bench-anomaly-{self.run_id}", f"bench-gate-{self.run_id}"])
        except KafkaError as problem:  # leftover topics cost disk, not correctness
            log.warning("could not delete the run's topics %s*: %r", self.prefix, problem)

    async def _phases(self) -> None:
        o, s = self.options, self.settings
        register = RegisterClient(self.services["register"].url, s.admin_token.get_secret_value())
        try:
            self.console.print(f"registering {o.sensors} load sensors and {o.probes} probe bins …")
            fleet = await register_fleet(register, "bench-", o.sensors, Domain.TRAFFIC)
            probes = await register_fleet(register, "probe-", o.probes, Domain.WASTE, seed=12)
        finally:
            await register.close()
        ingest_url = self.ingest_urls
        await self._wait_admitted(ingest_url, fleet)

        await self._load_phase("http", "HTTP ingest", 1, lambda seq, tick: http_load(
            ingest_url, fleet, batch=o.batch, connections=o.connections, duration_s=o.phase_s, seq_base=seq,
            bad_every=o.bad_every, progress=tick), fleet)
        await self._load_phase("kafka", "Kafka-native path", 2, lambda seq, tick: kafka_load(
            s.kafka, self.topic(RAW_READINGS), fleet, duration_s=o.phase_s, seq_base=seq,
            max_records=o.kafka_max_records, bad_every=o.bad_every, progress=tick), fleet)

        self.console.print("raw ceiling: plain aiokafka produce→consume and plain COPY of the same payloads …")
        ceilings = {
            "kafka_produce_consume": await ceiling.kafka_ceiling(s.kafka, self.topic("bench.ceiling"),
                                                                 fleet, o.ceiling_records),
            "kafka_send_per_record": await ceiling.kafka_ceiling(s.kafka, self.topic("bench.ceiling.send"),
                                                                 fleet, o.ceiling_records, batched=False),
            "copy": await ceiling.copy_ceiling(self.db_url, fleet, o.ceiling_records)}
        from citystream.bench import sasl_cost  # the cost of SASL: the same raw ceiling with and without it

        self.result["sasl_cost"] = await sasl_cost.measure(s.kafka, self.topic("bench.sasl-cost"), fleet,
                                                           o.ceiling_records)
        self.console.print(sasl_cost.describe(self.result["sasl_cost"]))

        await self._half_load_phase(ingest_url, fleet)
        await self._start_workers(o.anomaly_workers, f"bench-anomaly-{self.run_id}")
        await self._detected_phase("detected", 4, ingest_url, fleet)
        alert = await self._alert_phase(ingest_url, fleet, probes)
        if o.scale_out_workers and o.scale_out_workers != o.anomaly_workers:
            await self._stop_workers()
            await self._start_workers(o.scale_out_workers, f"bench-anomaly-{self.run_id}-x{o.scale_out_workers}")
            await self._detected_phase("detected_scale_out", 5, ingest_url, fleet)
        await self._stop_workers()  # the batch-size phases measure the ingest alone, as before
        await self._batch_sizes(ingest_url, fleet)
        self.result.update(summary(self.phases, ceilings, alert))
        self.result["phases"] = self.phases
        await self._scale_points()

    async def _wait_admitted(self, ingest_url: list[str], fleet: BenchFleet) -> None:
        """The gate learns the gateway credentials from the register topic; wait until a batch is admitted (the
        probes' readings are accounted like every other phase's)."""
        deadline = time.monotonic() + 60
        seq_low = 9 * SEQ_SPAN
        merged = LoadResult(started=time.time())
        while True:
            result = await http_load(ingest_url, fleet, batch=10, connections=1, duration_s=0.3, seq_base=seq_low)
            merged.sent += result.sent
            merged.accepted_keys |= result.accepted_keys
            merged.rejected.update(result.rejected)
            merged.errors.update(result.errors)
            merged.latencies_ms.extend(result.latencies_ms)
            merged.failed_requests += result.failed_requests
            if result.accepted_keys or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        merged.ended = time.time()
        await self._account("admission_probe", merged, seq_low, fleet)

    async def _account(self, name: str, load: LoadResult, seq_low: int, fleet: BenchFleet,
                       stored_at: float | None = None) -> dict[str, Any]:
        """Waits for the sink, then books the phase: acknowledged set against stored set, rejections stored.
        `stored_at`: when the sink was seen done (`_sink_caught_up`), if that was awaited first."""
        seq_high = seq_low + SEQ_SPAN
        stored, last_seen = await accounting.drain(self.db_url, seq_low, seq_high, len(load.accepted_keys))
        if stored_at is not None and stored >= len(load.accepted_keys):
            last_seen = stored_at  # the drain's first count came after the sink was done: it would be late
        books = await accounting.account(self.db_url, fleet.sensor_ids, seq_low, seq_high, load.accepted_keys)
        expected_rejections = sum(load.rejected.values()) + load.bad_sent - load.bad_accepted
        rejections_stored = await accounting.rejections(self.db_url, seq_low, seq_high, expected_rejections) \
            if expected_rejections else {}
        phase = phase_books(load, stored, last_seen, books, rejections_stored)
        self.phases[name] = phase
        return phase

    async def _sink_caught_up(self) -> float | None:
        """Waits until the sink group has stored (committed) every reading produced so far: when it was seen so."""
        group = self.prefix + sink_group(self.run_id)  # the sink prefixes its group id as it does its topics
        done_at = await accounting.wait_group_caught_up(self.settings.kafka, group,
                                                        [self.topic(readings_topic(d)) for d in Domain])
        if done_at is None:
            log.warning("sink group %s had not committed every readings partition to its end", group)
        return done_at

    async def _load_phase(self, name: str, title: str, phase: int, start, fleet: BenchFleet) -> dict[str, Any]:
        seq_low = phase * SEQ_SPAN
        cpu_before = self._cpu()
        load = await self._run_load(title, seq_low, start, self.options.phase_s)
        self.console.print(f"{title}: {len(load.accepted_keys):,} acknowledged in {load.seconds:.1f} s; "
                           "waiting for the sink …")
        stored_at = await self._sink_caught_up()
        # The services' CPU is read once they are done and before the benchmark's own bookkeeping (the accounting
        # queries over the readings, and this process decoding their answers), which is not the platform's cost.
        cpu_after = self._cpu()
        phase_figures = await self._account(name, load, seq_low, fleet, stored_at)
        phase_figures["cpu_us_per_reading"] = us_per_reading(cpu_before, cpu_after, phase_figures["stored"])
        return phase_figures

    async def _run_load(self, title: str, seq_low: int, start, duration_s: float) -> LoadResult:
        """Runs one load (`start(seq_low, tick)`, about `duration_s` long) under a progress bar."""
        # The benchmark process settles its collector (services/common/collector.py) before each load, as the
        # services do once ready: it holds the acknowledged keys of every phase so far (millions of ints in sets),
        # and the collector's full passes over them, started by the payloads each batch allocates, tripled the
        # cost of building a batch (1.5 µs per reading instead of 0.5 in a microbench with 3 million keys held):
        # CPU the load generator takes from the platform it measures on the same two cores.
        settle()
        # Two redraws a second rather than rich's ten: the bar shares the load generator's CPU.
        with RichProgress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[count]:>10,} sent"),
                      TimeElapsedColumn(), console=self.console, refresh_per_second=2) as progress:
            task = progress.add_task(title, total=duration_s, count=0)
            sent = [0]

            def tick(n: int) -> None:
                sent[0] += n

            async def refresh() -> None:
                began = time.monotonic()
                while True:
                    progress.update(task, completed=min(duration_s, time.monotonic() - began),
                                    count=sent[0])
                    await asyncio.sleep(0.25)

            refresher = asyncio.create_task(refresh())
            try:
                return await start(seq_low, tick)
            finally:
                refresher.cancel()

    async def _start_workers(self, count: int, app_id: str) -> None:
        """`count` anomaly workers in group `app_id`, starting at the head of the readings topics (as a fresh
        deployment in a live city would), ready and holding their partitions."""
        await self._skip_backlog(app_id)
        self.workers = anomaly_group(count, bootstrap=self.settings.kafka_bootstrap, database_url=self.db_url,
                                     topic_prefix=self.prefix, run_id=self.run_id,
                                     logs_dir=self.options.logs_dir / self.run_id, app_id=app_id)
        for worker in self.workers.values():  # sampled with the other services; summed under their role
            self.services[f"{app_id}/{worker.name}"] = worker
        self.console.print(f"starting {count} anomaly worker(s) in group {app_id} …")
        for worker in self.workers.values():
            worker.start()
        for worker in self.workers.values():
            await asyncio.to_thread(worker.wait_ready, 180)
        await self._wait_assigned(list(self.workers.values()), timeout_s=60)

    async def _wait_assigned(self, workers: list[Service], timeout_s: float) -> None:
        """Until every worker exports a lag series (it holds readings partitions: the group has settled)."""
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                try:
                    texts = [(await client.get(w.url + "/metrics")).text for w in workers]
                except httpx.HTTPError:
                    texts = []
                if texts and all("citystream_anomaly_consumer_lag_records{" in text for text in texts):
                    return
                await asyncio.sleep(0.5)
        log.warning("not every anomaly worker reported assigned partitions within %.0f s", timeout_s)

    async def _stop_workers(self) -> None:
        for worker in self.workers.values():
            await asyncio.to_thread(worker.stop)
        self.workers = {}

    async def _detected_phase(self, name: str, phase: int, ingest_urls: list[str], fleet: BenchFleet) -> None:
        """HTTP load at full speed with the anomaly workers judging: a reading counts once it is stored and
        judged. The lag gate holds the load generator back while the readings sent and not yet judged exceed
        `max_lag_s` of the judging rate (over the last 5 s), so the figure is the rate the platform sustains with detection keeping
        up, not a backlog growing behind it. The lag at the end of the load is measured from the broker's
        log-end offsets and the workers' judged counters."""
        o, seq_low = self.options, phase * SEQ_SPAN
        topics = [self.topic(readings_topic(d)) for d in Domain]
        judged = JudgedProgress(self.settings.kafka, topics, [w.url for w in self.workers.values()])
        await judged.start()
        try:
            gate = LagGate(judged, max_lag_s=o.max_lag_s, min_budget=2 * o.batch)
            cpu_before = self._cpu()
            sampler = asyncio.create_task(gate.run())
            try:
                load = await self._run_load(
                    f"HTTP with {len(self.workers)} anomaly worker(s) judging", seq_low,
                    lambda seq, tick: http_load(ingest_urls, fleet, batch=o.batch, connections=o.connections,
                                                duration_s=o.detected_phase_s, seq_base=seq, bad_every=o.bad_every,
                                                progress=tick, admit=gate), o.detected_phase_s)
            finally:
                sampler.cancel()
            at_end = await judged.sample()
            self.console.print(f"{len(load.accepted_keys):,} acknowledged in {load.seconds:.1f} s, "
                               f"{at_end.lag:,} not yet judged; waiting for the sink and the workers …")
            done, stored_at = await asyncio.gather(judged.wait_judged(o.detected_drain_s), self._sink_caught_up())
            cpu_after = self._cpu()  # as in _load_phase: the platform's work only, not the accounting's
            books = await self._account(name, load, seq_low, fleet, stored_at)
            books["cpu_us_per_reading"] = us_per_reading(cpu_before, cpu_after, books["stored"])
        finally:
            await judged.stop()
        books.update(detected_books(load, books, at_end, done, anomaly_workers=len(self.workers),
                                    held_s=gate.held_s))

    async def _half_load_phase(self, ingest_url: list[str], fleet: BenchFleet) -> None:
        """HTTP ingest paced at half the measured end-to-end rate, anomaly worker not yet running: ack latency of
        the ingest below saturation (the HTTP phase's p99 measures queueing)."""
        o = self.options
        half = max(100.0, self.phases["http"]["stored_per_s"] / 2)
        phase = await self._load_phase("http_half_load", f"HTTP at half load ({half:,.0f} readings/s)", 8,
                                       lambda seq, tick: http_load(
                                           ingest_url, fleet, batch=o.batch, connections=o.connections,
                                           duration_s=min(o.phase_s, o.half_load_s), seq_base=seq, rate=half,
                                           bad_every=o.bad_every, progress=tick), fleet)
        self.result.update(half_load_readings_per_s=phase["acked_per_s"],
                           ingest_ack_half_load_p50_ms=phase["ack_p50_ms"],
                           ingest_ack_half_load_p99_ms=phase["ack_p99_ms"])

    async def _alert_phase(self, ingest_urls: list[str], fleet: BenchFleet, probes: BenchFleet) -> dict[str, Any]:
        """With the detected phase's anomaly workers (caught up), probe bins overflow while ingest runs at half the
        stored-and-judged rate that phase measured."""
        o = self.options
        half = max(100.0, self.phases["detected"]["e2e_detected_readings_per_s"] / 2)
        duration = o.probes * 0.5 + 5
        self.console.print(f"reading→alert latency: {len(probes.sensor_ids)} overflow probes at half load "
                           f"({half:,.0f} readings/s, {len(self.workers)} anomaly worker(s)) …")
        cpu_before = self._cpu()
        settle()
        load = asyncio.create_task(http_load(ingest_urls, fleet, batch=o.batch, connections=4,
                                             duration_s=duration, seq_base=3 * SEQ_SPAN, rate=half,
                                             bad_every=o.bad_every))
        probes_began = time.time()
        probe = await alerts.alert_latency(self.settings.kafka, self.topic(ALERTS), ingest_urls[0], probes,
                                           spacing_s=0.5, settle_s=o.alert_settle_s)
        probes_ended = time.time()
        background = await load
        # The background load's requests give the ingest ack latency at half load with the anomaly worker running.
        phase = await self._account("alert_background", background, 3 * SEQ_SPAN, fleet)
        phase["cpu_us_per_reading"] = us_per_reading(cpu_before, self._cpu(), phase["stored"])
        probe_load = LoadResult(started=probes_began, ended=probes_ended, sent=2 * len(probes.sensor_ids),
                                accepted_keys=probe.accepted_keys)
        await self._account("alert_probes", probe_load, 0, probes)
        self.result.update(alert_phase_load_readings_per_s=phase["acked_per_s"], alert_phase_target_per_s=round(half),
                           alert_phase_ack_p50_ms=phase["ack_p50_ms"], alert_phase_ack_p99_ms=phase["ack_p99_ms"],
                           alert_phase_errors=phase["errors"])
        return {"latencies_ms": probe.latencies_ms, "missing": probe.missing, "not_admitted": probe.not_admitted,
                "wait_s": probe.wait_s, "probes": len(probes.sensor_ids)}

    async def _skip_backlog(self, group_id: str) -> None:
        consumer = AIOKafkaConsumer(**self.settings.kafka.client_options(), group_id=group_id,
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = await topic_partitions(consumer, [self.topic(readings_topic(d)) for d in Domain])
            consumer.assign(partitions)
            ends = await consumer.end_offsets(partitions)
            await consumer.commit(ends)
        finally:
            await consumer.stop()

    async def _batch_sizes(self, ingest_url: list[str], fleet: BenchFleet) -> None:
        points = []
        for index, size in enumerate(self.options.batch_sizes):
            self.console.print(f"HTTP batch size {size} …")
            settle()
            load = await http_load(ingest_url, fleet, batch=size, connections=self.options.connections,
                                   duration_s=self.options.batch_phase_s, seq_base=(BATCH_PHASE_BASE + index) * SEQ_SPAN,
                                   bad_every=self.options.bad_every)
            phase = await self._account(f"batch_{size}", load, (BATCH_PHASE_BASE + index) * SEQ_SPAN, fleet)
            points.append({"batch": size, "acked_per_s": phase["acked_per_s"], "ack_p50_ms": phase["ack_p50_ms"],
                           "ack_p99_ms": phase["ack_p99_ms"], "lost": phase["lost"]})
        self.result["batch_sizes"] = points

    async def _scale_points(self) -> None:
        points = []
        for count in self.options.scale_points:
            self.console.print(f"register view with {count:,} sensors …")
            point = await asyncio.to_thread(scale.measure, count)
            points.append({k: round(v, 2) for k, v in point.items()})
        self.result["register_view_scale"] = points


def detector_benchmark() -> dict[str, Any]:
    """Runs `python -m services.anomaly.bench` (if present) and keeps its per-domain µs/reading and ceiling."""
    try:
        output = subprocess.run([sys.executable, "-m", "services.anomaly.bench"], capture_output=True, text=True,
                                timeout=300, check=True).stdout
    except (subprocess.SubprocessError, OSError) as problem:
        return {"error": repr(problem)}
    found = {}
    for line in output.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 3:
            try:
                found[parts[0]] = {"detectors_us_per_reading": float(parts[1]), "ceiling_us_per_reading": float(parts[2])}
            except ValueError:
                continue
    return found


def save(result: dict[str, Any], results_dir: Path) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return path


