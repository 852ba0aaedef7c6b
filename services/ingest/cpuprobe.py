"""`python -m services.ingest.cpuprobe`: CPU µs per reading of one `python -m services.ingest http` process.

Declares a fleet of traffic sensors sharing one gateway credential on the register topic (under its own topic
prefix), starts the ingest process and a trivial ceiling server (same uvicorn, reads the body, parses it with
orjson and answers a fixed 200: what any HTTP JSON endpoint pays), posts the same pre-built batches to each with
the same client loop, and reads the server's utime+stime from /proc before and after. Prints one JSON line.
Development tool: it talks to the Kafka the CITYSTREAM_* settings name and deletes its topics at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson

from schemas.common import Domain
from schemas.register import CredentialHash, CredentialKind, MetricDeclaration, SensorRegistration, SensorStatus
from schemas.topics import REGISTER_SENSORS
from services.common import jsonwire
from services.common.kafka import create_topics, delete_topics_with_prefixes, make_producer
from services.ingest.settings import IngestSettings

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
METRICS = (MetricDeclaration(name="intensity", unit="vehicles", min=0, max=10_000),
           MetricDeclaration(name="averageVehicleSpeed", unit="km/h", min=0, max=250))


async def ceiling_app(scope, receive, send) -> None:
    """The ceiling: read the body, parse it, answer a fixed JSON 200."""
    if scope["type"] != "http":
        return
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    if body:
        orjson.loads(body)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"accepted":0}'})


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S  # utime, stime


async def declare(settings: IngestSettings, sensors: int) -> tuple[list[str], str]:
    key_id, secret = f"k{secrets.token_hex(6)}", secrets.token_urlsafe(32)
    stored = CredentialHash(key_id=key_id, kind=CredentialKind.GATEWAY,
                            secret_sha256=hashlib.sha256(secret.encode()).hexdigest())
    ids = [f"traffic-probe-{index:05d}" for index in range(sensors)]
    producer = make_producer(settings.kafka, "cpuprobe-register")
    await producer.start()
    try:
        for sensor_id in ids:
            record = SensorRegistration(
                sensor_id=sensor_id, version=1, status=SensorStatus.ACTIVE, domain=Domain.TRAFFIC,
                owner_organisation="Probe", metrics=METRICS, rate_limit_per_minute=1_000_000,
                reporting_interval_s=60, credentials=(stored,), updated_at=datetime.now(UTC))
            await producer.send(settings.topic(REGISTER_SENSORS), jsonwire.dumps(record), key=sensor_id.encode())
        await producer.flush()
    finally:
        await producer.stop()
    return ids, f"{key_id}.{secret}"


def bodies(ids: list[str], batch: int, count: int) -> list[bytes]:
    observed_at = (datetime.now(UTC) - timedelta(seconds=2)).isoformat(timespec="milliseconds")
    made, seq = [], 0
    for _ in range(count):
        readings = []
        for _ in range(batch):
            seq += 1
            readings.append({"sensor_id": ids[seq % len(ids)], "seq": seq, "observed_at": observed_at,
                             "metrics": {"intensity": float(seq % 900), "averageVehicleSpeed": 42.5}})
        made.append(orjson.dumps({"readings": readings}))
    return made


async def drive(url: str, credential: str, payloads: list[bytes], connections: int) -> dict[str, int]:
    statuses: dict[str, int] = {}
    queue = list(reversed(payloads))
    headers = {"Authorization": f"Bearer {credential}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        async def worker() -> None:
            while queue:
                response = await client.post("/v1/readings", content=queue.pop(), headers=headers)
                statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
        await asyncio.gather(*(worker() for _ in range(connections)))
    return statuses


async def wait_ready(url: str, path: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        while True:
            try:
                if (await client.get(path)).status_code in (200, 404):
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}{path} not ready")
            await asyncio.sleep(0.3)


def start(argv: list[str], env: dict[str, str], source: str | None = None) -> subprocess.Popen:
    """`source`: another checkout of the project to run the process from (a before/after comparison)."""
    if source is not None:
        env = env | {"PYTHONPATH": source}
    return subprocess.Popen([sys.executable, *argv], env=env, cwd=source, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=sys.stderr)


async def measure(url: str, pid: int, credential: str, payloads: list[bytes], connections: int,
                  readings: int) -> dict:
    await drive(url, credential, payloads[:5], connections)  # warm-up
    before, started = cpu_s(pid), time.perf_counter()
    statuses = await drive(url, credential, payloads, connections)
    elapsed_s, used_s = time.perf_counter() - started, cpu_s(pid) - before
    return {"cpu_us_per_reading": round(used_s / readings * 1e6, 2), "readings_per_s": round(readings / elapsed_s),
            "statuses": statuses}


async def main(args: argparse.Namespace) -> dict:
    prefix = f"cpuprobe-{uuid.uuid4().hex[:8]}."
    env = os.environ | {"CITYSTREAM_TOPIC_PREFIX": prefix, "CITYSTREAM_INGEST_HTTP_PORT": str(args.port)}
    settings = IngestSettings(topic_prefix=prefix)
    await create_topics(settings.kafka, prefix=prefix)
    ids, credential = await declare(settings, args.sensors)
    payloads = bodies(ids, args.batch, args.requests)
    readings = args.batch * args.requests
    ingest = start(["-m", "services.ingest", "http"], env)
    ceiling = start(["-m", "uvicorn", "services.ingest.cpuprobe:ceiling_app", "--port", str(args.port + 1),
                     "--log-level", "warning"], env)
    servers = {"ingest": (ingest, args.port), "ceiling": (ceiling, args.port + 1)}
    if args.baseline is not None:
        baseline_env = env | {"CITYSTREAM_INGEST_HTTP_PORT": str(args.port + 2)}
        servers["baseline"] = (start(["-m", "services.ingest", "http"], baseline_env, args.baseline), args.port + 2)
    results: dict = {"batch": args.batch, "requests": args.requests, "connections": args.connections,
                     "sensors": args.sensors, "rounds": []}
    try:
        for name, (_, port) in servers.items():
            await wait_ready(f"http://127.0.0.1:{port}", "/" if name == "ceiling" else "/readyz")
        for _ in range(args.rounds):  # alternate, so drift in machine load hits all alike
            results["rounds"].append({
                name: await measure(f"http://127.0.0.1:{port}", process.pid, credential, payloads, args.connections,
                                    readings)
                for name, (process, port) in servers.items()})
        for name in servers:
            figures = [round_[name]["cpu_us_per_reading"] for round_ in results["rounds"]]
            results[f"{name}_cpu_us_per_reading_median"] = sorted(figures)[len(figures) // 2]
    finally:
        for process, _ in servers.values():
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        await delete_topics_with_prefixes(settings.kafka, [prefix])
    return results


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8260, help="ingest port; the ceiling server uses port + 1")
    parser.add_argument("--sensors", type=int, default=300)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--baseline", help="another checkout: its ingest-http runs too (port + 2), alternating")
    print(json.dumps(asyncio.run(main(parser.parse_args()))))


if __name__ == "__main__":
    cli()
