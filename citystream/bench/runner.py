"""`citystream bench`: a fresh database and topic prefix, the services as subprocesses, then the phases —
HTTP ingest at full load, the Kafka-native path, the raw ceiling, reading→alert latency at half load, batch sizes,
register-view scale points, the detector micro-benchmark — and one JSON result.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from citystream.bench import accounting, alerts, ceiling, scale
from citystream.bench.fleet import register_fleet
from citystream.bench.load import LoadResult, http_load, kafka_load, percentile
from citystream.bench.processes import Service, platform_services
from citystream.simulate.clients import RegisterClient
from citystream.simulate.settings import SimulateSettings
from schemas.common import Domain
from schemas.topics import ALERTS, RAW_READINGS, readings_topic
from services.common.kafka import create_topics
from services.common.migrate import migrate

log = logging.getLogger(__name__)
SEQ_SPAN = 10**11  # each phase numbers its readings in its own seq range, so accounting is per phase


@dataclass(frozen=True)
class BenchOptions:
    phase_s: float = 30.0
    sensors: int = 500
    batch: int = 1000
    connections: int = 8
    probes: int = 40
    batch_sizes: tuple[int, ...] = (1, 100, 1000)
    batch_phase_s: float = 8.0
    scale_points: tuple[int, ...] = (1_000, 100_000)
    ceiling_records: int = 200_000
    kafka_max_records: int = 300_000  # the producer outruns the gate ~10×: bound the backlog it must drain
    results_dir: Path = Path("bench/results")
    logs_dir: Path = Path(".citystream/bench")


class Sampler:
    """Samples CPU and peak memory of every service twice a second, in a thread (the event loop is busy)."""

    def __init__(self, services: dict[str, Service]) -> None:
        self.services = services
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for service in self.services.values():
                service.sample()

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        for service in self.services.values():
            service.sample()


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


class Bench:
    def __init__(self, settings: SimulateSettings, options: BenchOptions, console: Console) -> None:
        self.settings, self.options, self.console = settings, options, console
        self.run_id = uuid.uuid4().hex[:8]
        self.prefix = f"bench.{self.run_id}."
        self.result: dict[str, Any] = {"run_id": self.run_id}
        self.services: dict[str, Service] = {}

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    async def run(self) -> dict[str, Any]:
        options, admin_url = self.options, self.settings.database_url
        self.db_url = await accounting.create_database(admin_url)
        try:
            await migrate(self.db_url)
            await create_topics(self.settings.kafka_bootstrap, prefix=self.prefix)
            self.services = platform_services(
                bootstrap=self.settings.kafka_bootstrap, database_url=self.db_url, topic_prefix=self.prefix,
                run_id=self.run_id, logs_dir=options.logs_dir / self.run_id,
                roles=("register", "ingest-http", "ingest-gate", "ingest-sink", "anomaly"))
            for name in ("register", "ingest-http", "ingest-gate", "ingest-sink"):
                self.services[name].start()
            for name in ("register", "ingest-http", "ingest-gate", "ingest-sink"):
                await asyncio.to_thread(self.services[name].wait_ready, 120)
            with Sampler(self.services):
                await self._phases()
            self.result["components"] = {
                name: {"cpu_s": round(s.cpu_s, 1), "peak_rss_mb": round(s.peak_rss_bytes / 2**20, 1)}
                for name, s in self.services.items() if s.process is not None}
        finally:
            for service in self.services.values():
                await asyncio.to_thread(service.stop)
            await accounting.drop_database(admin_url, self.db_url)
        return self.result

    async def _phases(self) -> None:
        o, s = self.options, self.settings
        register = RegisterClient(self.services["register"].url, s.admin_token.get_secret_value())
        ingest_url = self.services["ingest-http"].url
        try:
            self.console.print(f"registering {o.sensors} load sensors and {o.probes} probe bins …")
            fleet = await register_fleet(register, "bench-", o.sensors, Domain.TRAFFIC)
            probes = await register_fleet(register, "probe-", o.probes, Domain.WASTE, seed=12)
        finally:
            await register.close()
        await self._wait_admitted(ingest_url, fleet)

        http = await self._load_phase("HTTP ingest", 1, lambda seq, tick: http_load(
            ingest_url, fleet, batch=o.batch, connections=o.connections, duration_s=o.phase_s, seq_base=seq,
            progress=tick), fleet)
        self.result.update(http_acked_readings_per_s=round(http["acked_per_s"]),
                           e2e_readings_per_s=http["stored_per_s"], ingest_ack_p50_ms=http["ack_p50_ms"],
                           ingest_ack_p99_ms=http["ack_p99_ms"], lost=http["lost"], duplicates=http["duplicates"],
                           http_rejected=http["rejected"])
        kafka = await self._load_phase("Kafka-native path", 2, lambda seq, tick: kafka_load(
            s.kafka_bootstrap, self.topic(RAW_READINGS), fleet, duration_s=o.phase_s, seq_base=seq,
            max_records=o.kafka_max_records, progress=tick), fleet)
        self.result.update(kafka_produced_readings_per_s=round(kafka["acked_per_s"]),
                           kafka_path_readings_per_s=kafka["stored_per_s"],
                           lost=self.result["lost"] + kafka["lost"],
                           duplicates=self.result["duplicates"] + kafka["duplicates"])
        self.result["phases"] = {"http": http, "kafka": kafka}

        self.console.print("raw ceiling: plain aiokafka produce→consume and plain COPY of the same payloads …")
        kafka_ceiling = await ceiling.kafka_ceiling(s.kafka_bootstrap, self.topic("bench.ceiling"), fleet,
                                                    o.ceiling_records)
        per_record_ceiling = await ceiling.kafka_ceiling(s.kafka_bootstrap, self.topic("bench.ceiling.send"), fleet,
                                                         o.ceiling_records, batched=False)
        copy_ceiling = await ceiling.copy_ceiling(self.db_url, fleet, o.ceiling_records)
        raw = min(kafka_ceiling, copy_ceiling)
        self.result.update(raw_kafka_produce_consume_per_s=round(kafka_ceiling),
                           raw_kafka_send_per_record_per_s=round(per_record_ceiling),
                           raw_copy_rows_per_s=round(copy_ceiling),
                           raw_ceiling_readings_per_s=round(raw),
                           e2e_fraction_of_ceiling=round(self.result["e2e_readings_per_s"] / raw, 3),
                           kafka_path_fraction_of_ceiling=round(self.result["kafka_path_readings_per_s"] / raw, 3))

        await self._half_load_phase(ingest_url, fleet)
        await self._alert_phase(ingest_url, fleet, probes)
        await self._batch_sizes(ingest_url, fleet)
        await self._scale_points()
        self.result["detectors"] = await asyncio.to_thread(detector_benchmark)

    async def _wait_admitted(self, ingest_url: str, fleet) -> None:
        """The gate learns the gateway credentials from the register topic; wait until a batch is admitted."""
        deadline = time.monotonic() + 60
        while True:
            result = await http_load(ingest_url, fleet, batch=10, connections=1, duration_s=0.3,
                                     seq_base=9 * SEQ_SPAN)
            if result.accepted_keys or time.monotonic() > deadline:
                return
            await asyncio.sleep(0.5)

    async def _load_phase(self, title: str, phase: int, start, fleet) -> dict[str, Any]:
        seq_low = phase * SEQ_SPAN
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[count]:>10,} sent"),
                      TimeElapsedColumn(), console=self.console) as progress:
            task = progress.add_task(title, total=self.options.phase_s, count=0)
            sent = [0]

            def tick(n: int) -> None:
                sent[0] += n

            async def refresh() -> None:
                began = time.monotonic()
                while True:
                    progress.update(task, completed=min(self.options.phase_s, time.monotonic() - began),
                                    count=sent[0])
                    await asyncio.sleep(0.25)

            refresher = asyncio.create_task(refresh())
            try:
                load: LoadResult = await start(seq_low, tick)
            finally:
                refresher.cancel()
        self.console.print(f"{title}: {len(load.accepted_keys):,} acknowledged in {load.seconds:.1f} s; "
                           "waiting for the sink …")
        stored, last_seen = await accounting.drain(self.db_url, seq_low, seq_low + SEQ_SPAN, len(load.accepted_keys))
        books = await accounting.account(self.db_url, fleet.sensor_ids, seq_low, seq_low + SEQ_SPAN,
                                         load.accepted_keys)
        return {"seconds": round(load.seconds, 1), "sent": load.sent, "acked": len(load.accepted_keys),
                "acked_per_s": round(load.acked_per_s), "stored": stored,
                "stored_per_s": round(stored / max(1e-9, last_seen - load.started)),
                "ack_p50_ms": _ms(percentile(load.latencies_ms, 50)), "ack_p99_ms": _ms(percentile(load.latencies_ms, 99)),
                "rejected": dict(load.rejected), "rejected_per_s": {r: round(n / load.seconds, 1)
                                                                    for r, n in load.rejected.items()},
                "errors": dict(load.errors), "lost": books.lost, "duplicates": books.duplicates,
                "stored_not_acked": books.unexpected}

    async def _half_load_phase(self, ingest_url: str, fleet) -> None:
        """HTTP ingest paced at half the measured end-to-end rate, anomaly worker not yet running: ack latency of
        the ingest below saturation (the HTTP phase's p99 measures queueing)."""
        o = self.options
        half = max(100.0, self.result["e2e_readings_per_s"] / 2)
        phase = await self._load_phase(f"HTTP at half load ({half:,.0f} readings/s)", 8, lambda seq, tick: http_load(
            ingest_url, fleet, batch=o.batch, connections=o.connections, duration_s=min(o.phase_s, 15.0),
            seq_base=seq, rate=half, progress=tick), fleet)
        self.result["phases"]["http_half_load"] = phase
        self.result.update(half_load_readings_per_s=phase["acked_per_s"],
                           ingest_ack_half_load_p50_ms=phase["ack_p50_ms"],
                           ingest_ack_half_load_p99_ms=phase["ack_p99_ms"],
                           lost=self.result["lost"] + phase["lost"],
                           duplicates=self.result["duplicates"] + phase["duplicates"])

    async def _alert_phase(self, ingest_url: str, fleet, probes) -> None:
        """Anomaly worker starts at the head of the readings topics (as a fresh deployment in a live city would),
        then probe bins overflow while ingest runs at half the measured HTTP rate."""
        await self._skip_backlog(f"bench-anomaly-{self.run_id}")
        anomaly = self.services["anomaly"]
        anomaly.start()
        await asyncio.to_thread(anomaly.wait_ready, 180)
        half = max(100.0, self.result["e2e_readings_per_s"] / 2)
        duration = self.options.probes * 0.5 + 5
        self.console.print(f"reading→alert latency: {self.options.probes} overflow probes at half load "
                           f"({half:,.0f} readings/s) …")
        load = asyncio.create_task(http_load(ingest_url, fleet, batch=self.options.batch, connections=4,
                                             duration_s=duration, seq_base=3 * SEQ_SPAN, rate=half))
        latencies, missing = await alerts.alert_latency(self.settings.kafka_bootstrap, self.topic(ALERTS), ingest_url,
                                                        probes, spacing_s=0.5)
        background = await load
        # The background load's requests give the ingest ack latency at half load with the anomaly worker running.
        self.result.update(alert_latency_p50_ms=_ms(percentile(latencies, 50)),
                           alert_latency_p99_ms=_ms(percentile(latencies, 99)), alert_probes_missing=missing,
                           alert_probes=len(probes.sensor_ids),
                           alert_phase_load_readings_per_s=round(background.acked_per_s),
                           alert_phase_ack_p50_ms=_ms(percentile(background.latencies_ms, 50)),
                           alert_phase_ack_p99_ms=_ms(percentile(background.latencies_ms, 99)),
                           alert_phase_errors=dict(background.errors))

    async def _skip_backlog(self, group_id: str) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap, group_id=group_id,
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            cluster = await consumer._client.fetch_all_metadata()
            partitions = [TopicPartition(self.topic(readings_topic(d)), p) for d in Domain
                          for p in sorted(cluster.partitions_for_topic(self.topic(readings_topic(d))) or ())]
            consumer.assign(partitions)
            ends = await consumer.end_offsets(partitions)
            await consumer.commit(ends)
        finally:
            await consumer.stop()

    async def _batch_sizes(self, ingest_url: str, fleet) -> None:
        points = []
        for index, size in enumerate(self.options.batch_sizes):
            self.console.print(f"HTTP batch size {size} …")
            load = await http_load(ingest_url, fleet, batch=size, connections=self.options.connections,
                                   duration_s=self.options.batch_phase_s, seq_base=(4 + index) * SEQ_SPAN)
            points.append({"batch": size, "acked_per_s": round(load.acked_per_s),
                           "ack_p50_ms": _ms(percentile(load.latencies_ms, 50)),
                           "ack_p99_ms": _ms(percentile(load.latencies_ms, 99))})
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


