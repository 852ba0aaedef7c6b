"""`python -m services.anomaly.loadprobe`: throughput and probe→alert latency of the anomaly worker on the real broker.

A benchmark, not a test. On a fresh topic prefix it (1) produces a backlog of N readings of M sensors, split evenly
over the three readings topics (traffic loops, energy meters, waste bins; `--domains` picks fewer), (2) reads that
backlog with a plain aiokafka consumer (the raw ceiling), (3) runs
`python -m services.anomaly worker` as a subprocess and times how fast its `citystream_anomaly_readings_total`
counter drains the backlog (and its CPU per reading, from /proc), and (4) paces traffic readings at a fixed rate while waste probe bins overflow
(fillingLevel 0.97 after a 0.3 reading) and times each probe's produce → `opened` overflow alert on
`citystream.alerts.v1`. Prints one table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.headers import make_headers
from schemas.topics import ALERTS, readings_topic
from services.common.kafka import create_topics, make_admin, make_producer
from services.common.settings import CommonSettings, KafkaAccess

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = [(420.0, 0.12, 72.0), (515.0, 0.18, 65.0), (380.0, 0.10, 78.0), (610.0, 0.22, 58.0)]


def _reading(sensor_id: str, seq: int, t: float, domain: str, metrics: dict) -> bytes:
    at = datetime.fromtimestamp(t, UTC).isoformat()
    return orjson.dumps({"sensor_id": sensor_id, "seq": seq, "observed_at": at, "received_at": at,
                         "register_version": 1, "domain": domain, "metrics": metrics})


def _traffic(sensor: int, seq: int, t: float) -> tuple[bytes, bytes]:
    intensity, occupancy, speed = VARIANTS[(sensor + seq) % len(VARIANTS)]
    sensor_id = f"loop-lp-{sensor:05d}"
    return sensor_id.encode(), _reading(sensor_id, seq, t, "traffic", {
        "intensity": intensity + seq % 7, "occupancy": occupancy, "averageVehicleSpeed": speed - seq % 5})


def _energy(sensor: int, seq: int, t: float) -> tuple[bytes, bytes]:
    sensor_id = f"meter-lp-{sensor:05d}"
    return sensor_id.encode(), _reading(sensor_id, seq, t, "energy", {
        "activePower": 20.0 + (sensor + seq) % 5 * 0.3, "voltage": 230.0 + seq % 3, "current": 8.5 + seq % 4 * 0.1,
        "powerFactor": 0.95})


def _waste(sensor: int, seq: int, t: float) -> tuple[bytes, bytes]:
    sensor_id = f"bin-lp-{sensor:05d}"
    return sensor_id.encode(), _reading(sensor_id, seq, t, "waste", {
        "fillingLevel": 0.3 + (sensor + seq) % 7 * 0.01, "temperature": 12.0 + seq % 3 * 0.5})


GENERATORS = {"traffic": _traffic, "energy": _energy, "waste": _waste}


async def _produce(producer, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    headers = make_headers(topic, "loadprobe")
    futures = [await producer.send(topic, value, key=key, headers=headers) for key, value in records]
    await asyncio.gather(*futures)


async def raw_ceiling(bootstrap: KafkaAccess, topics: list[str], expected: int) -> float:
    """Readings/s of a plain aiokafka consumer reading the backlog (records fetched and JSON-decoded, nothing else)."""
    consumer = AIOKafkaConsumer(*topics, **bootstrap.client_options(), group_id=None, auto_offset_reset="earliest",
                                enable_auto_commit=False, max_poll_records=5000)
    await consumer.start()
    try:
        seen, started = 0, None
        while seen < expected:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                started = started or time.perf_counter()
                for record in records:
                    orjson.loads(record.value)
                seen += len(records)
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


class WorkerProcess:
    def __init__(self, bootstrap: KafkaAccess, prefix: str, workdir: Path, profile: str | None = None,
                 root: Path = ROOT) -> None:
        self.root = root
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.env = {**os.environ, **bootstrap.environment(), "CITYSTREAM_TOPIC_PREFIX": prefix,
                    "CITYSTREAM_ANOMALY_APP_ID": f"loadprobe-{uuid.uuid4().hex[:8]}",
                    "CITYSTREAM_ANOMALY_WEB_PORT": str(self.port), "CITYSTREAM_LOG_LEVEL": "WARNING",
                    "CITYSTREAM_ANOMALY_DATA_DIR": str(workdir / "data")}
        self.log_path = workdir / "worker.log"
        self.process: subprocess.Popen | None = None
        # With a profile path the worker runs under pyinstrument, which writes its report when the worker stops.
        self.command = [sys.executable, "-m", "services.anomaly", "worker"] if profile is None else [
            sys.executable, "-m", "pyinstrument", "-r", "text", "-o", profile, "-m", "services.anomaly", "worker"]

    def start(self, timeout_s: float = 120) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command, cwd=self.root,
                                            env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"worker exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise SystemExit(f"worker not ready: {self.log_path.read_text()[-3000:]}")

    def readings(self) -> float:
        text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("citystream_anomaly_readings_total"))

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def drain(worker: WorkerProcess, expected: int, timeout_s: float) -> tuple[float, float]:
    """(readings/s while the worker drains the backlog, worker CPU µs per reading)."""
    start_count, start_cpu = worker.readings(), worker.cpu_s()
    first = last = None
    deadline = time.monotonic() + timeout_s
    count = start_count
    while count < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        count = worker.readings()
        now = time.perf_counter()
        if first is None and count > start_count:
            first, first_count = now, count
        last = now
    if first is None or last <= first:  # drained before the second sample: too small a backlog to time
        return float("nan"), float("nan")
    cpu = worker.cpu_s() - start_cpu
    return (count - first_count) / (last - first), cpu / max(1, count - start_count) * 1e6


async def paced_probes(bootstrap: KafkaAccess, prefix: str, worker: WorkerProcess, *, sensors: int, rate: float,
                       probes: int, spacing_s: float, seq_base: int, t0: float, interval_s: float) -> dict:
    """Traffic readings at `rate`/s while `probes` waste bins overflow; latencies of their `opened` alerts."""
    traffic, waste, alerts = (prefix + readings_topic("traffic"), prefix + readings_topic("waste"), prefix + ALERTS)
    consumer = AIOKafkaConsumer(**bootstrap.client_options(), enable_auto_commit=False)
    await consumer.start()
    partitions = [TopicPartition(alerts, p) for p in range(4)]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for tp in partitions:
        await consumer.position(tp)
    producer = make_producer(bootstrap, "loadprobe-paced", linger_ms=5)
    await producer.start()
    sent_at: dict[str, float] = {}
    latencies: dict[str, float] = {}
    stop = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100)
            arrived = time.perf_counter()
            for records in batch.values():
                for record in records:
                    event = orjson.loads(record.value)
                    sensor = event["sensor_id"]
                    if event["event_type"] == "opened" and event["kind"] == "overflow" and sensor in sent_at:
                        latencies.setdefault(sensor, (arrived - sent_at[sensor]) * 1000)

    async def load(duration_s: float) -> int:
        sent, started, seq, tick = 0, time.perf_counter(), seq_base, 0.05
        while time.perf_counter() - started < duration_s:
            due = int((time.perf_counter() - started + tick) * rate) - sent
            if due > 0:
                records = []
                for i in range(due):
                    sensor = (sent + i) % sensors
                    if sensor == 0:
                        seq += 1
                    records.append(_traffic(sensor, seq, t0 + seq * interval_s))
                await _produce(producer, traffic, records)
                sent += due
            await asyncio.sleep(max(0.0, tick - (time.perf_counter() - started) % tick))
        return sent

    watcher = asyncio.create_task(watch())
    start_count = worker.readings()
    started = time.perf_counter()
    background = asyncio.create_task(load(probes * spacing_s + 3.0))
    try:
        bins = [f"bin-lp-{uuid.uuid4().hex[:6]}-{i:03d}" for i in range(probes)]
        now = time.time()
        await _produce(producer, waste, [(b.encode(), _reading(b, 1, now, "waste", {"fillingLevel": 0.3}))
                                         for b in bins])
        await asyncio.sleep(1.0)
        for b in bins:
            sent_at[b] = time.perf_counter()
            await producer.send_and_wait(waste, _reading(b, 2, time.time(), "waste", {"fillingLevel": 0.97}),
                                         key=b.encode(), headers=make_headers(waste, "loadprobe"))
            await asyncio.sleep(spacing_s)
        sent = await background
        elapsed = time.perf_counter() - started
        judged = worker.readings() - start_count
        deadline = time.monotonic() + 20
        while len(latencies) < len(sent_at) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await watcher
        await producer.stop()
        await consumer.stop()
    return {"paced_rate_readings_per_s": round(sent / elapsed), "paced_judged_per_s": round(judged / elapsed),
            "latencies_ms": sorted(latencies.values()), "missing": len(sent_at) - len(latencies)}


async def delete_topics(bootstrap: KafkaAccess, *prefixes: str) -> None:
    """The probe's own topics (its prefix, and the worker's changelog and ticks topics) go when it is done."""
    admin = make_admin(bootstrap)
    await admin.start()
    try:
        mine = [topic for topic in await admin.list_topics() if topic.startswith(prefixes)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


async def run(args: argparse.Namespace) -> dict:
    prefix = f"loadprobe-{uuid.uuid4().hex[:8]}."
    await create_topics(args.bootstrap, prefix=prefix)
    domains = args.domains.split(",")
    t0 = time.time() - 86_400
    producer = make_producer(args.bootstrap, "loadprobe", linger_ms=20)
    await producer.start()
    sensors = max(1, args.sensors // len(domains))  # per domain
    per_sensor = args.readings // (sensors * len(domains))
    try:
        for seq in range(1, per_sensor + 1):
            for domain in domains:
                await _produce(producer, prefix + readings_topic(domain),
                               [GENERATORS[domain](s, seq, t0 + seq * args.interval_s) for s in range(sensors)])
    finally:
        await producer.stop()
    backlog = per_sensor * sensors * len(domains)
    ceiling = await raw_ceiling(args.bootstrap, [prefix + readings_topic(d) for d in domains], backlog)
    with tempfile.TemporaryDirectory(prefix="cs-loadprobe-") as workdir:
        worker = WorkerProcess(args.bootstrap, prefix, Path(workdir), args.profile, Path(args.worker_root))
        try:
            worker.start()
            rate, cpu_us = await drain(worker, backlog, timeout_s=args.timeout_s)
            paced = await paced_probes(args.bootstrap, prefix, worker, sensors=args.sensors, rate=args.rate,
                                       probes=args.probes, spacing_s=0.5, seq_base=per_sensor, t0=t0,
                                       interval_s=args.interval_s)
        finally:
            worker.stop()
            kept_log = Path(tempfile.gettempdir()) / f"{prefix}worker.log"
            kept_log.write_bytes(worker.log_path.read_bytes())
            await delete_topics(args.bootstrap, prefix, worker.env["CITYSTREAM_ANOMALY_APP_ID"] + "-")
    lat = paced.pop("latencies_ms")
    return {"topic_prefix": prefix, "worker_log": str(kept_log), "worker_root": args.worker_root,
            "domains": args.domains, "sensors": sensors * len(domains),
            "interval_s": args.interval_s, "backlog_readings": backlog,
            "raw_ceiling_readings_per_s": round(ceiling), "worker_readings_per_s": round(rate, 1),
            "worker_ratio_to_ceiling": round(rate / ceiling, 3),
            "worker_cpu_us_per_reading": round(cpu_us, 1), **paced, "probes": args.probes,
            "alert_latency_p50_ms": percentile(lat, 50) and round(percentile(lat, 50), 1),
            "alert_latency_p99_ms": percentile(lat, 99) and round(percentile(lat, 99), 1),
            "alert_latency_max_ms": lat and round(lat[-1], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=os.environ.get("CITYSTREAM_KAFKA_BOOTSTRAP", "127.0.0.1:19092"))
    parser.add_argument("--sensors", type=int, default=500, help="in all, split evenly over the domains")
    parser.add_argument("--domains", default="traffic,energy,waste", help="readings topics of the backlog")
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=7000.0, help="paced traffic readings/s during the probes")
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--timeout-s", type=float, default=240.0, help="give up draining the backlog after this")
    parser.add_argument("--interval-s", type=float, default=5.0,
                        help="reading time between a sensor's readings (60+ closes a rollup window per reading)")
    parser.add_argument("--worker-root", default=str(ROOT),
                        help="source tree the worker runs from (e.g. an exported older commit, for before/after)")
    parser.add_argument("--profile", help="run the worker under pyinstrument and write its text report here")
    args = parser.parse_args()
    # Credentials as every CityStream client takes them (CITYSTREAM_KAFKA_USERNAME, ...).
    args.bootstrap = CommonSettings(kafka_bootstrap=args.bootstrap).kafka
    result = asyncio.run(run(args))
    for key, value in result.items():
        print(f"{key:34} {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
