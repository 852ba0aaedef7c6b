"""`citystream loadgen`: drives an already running platform (register + ingest, e.g. the one `make run` starts) as
hard as it can for a set time over HTTP batches (`POST /v1/readings`) and/or the Kafka-native path
(`citystream.readings.raw.v1`), with a progress bar; prints a table and, as the last line, one JSON object.

It declares its own traffic loops (`--prefix`, gateway credentials) through the register API and uses the
benchmark's load generators (citystream.bench.load). Acknowledged = HTTP 200 per reading / Kafka acks=all per record.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from enum import StrEnum
from typing import Annotated, Any

import typer
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from citystream.bench.fleet import BenchFleet, register_fleet
from citystream.bench.load import LoadResult, http_load, kafka_load, percentile
from citystream.simulate.clients import RegisterClient, wait_until_ready
from citystream.simulate.settings import SimulateSettings
from schemas.common import Domain
from schemas.topics import RAW_READINGS
from services.common.collector import settle

app = typer.Typer(help="Load generator against a running platform (HTTP batches and/or the raw Kafka topic).",
                  invoke_without_command=True)
console = Console(stderr=True)


class LoadPath(StrEnum):
    HTTP = "http"
    KAFKA = "kafka"
    BOTH = "both"


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


async def _wait_admitted(ingest_url: str, fleet: BenchFleet, seq_base: int, timeout_s: float = 60.0) -> None:
    """The gate learns new credentials from the register topic within about a second: probe until admitted."""
    deadline = time.monotonic() + timeout_s
    while True:
        probe = await http_load(ingest_url, fleet, batch=1, connections=1, duration_s=0.3, seq_base=seq_base)
        if probe.accepted_keys:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"ingest at {ingest_url} did not admit the load sensors within {timeout_s:.0f} s "
                               f"(rejections {dict(probe.rejected)}, errors {dict(probe.errors)})")
        await asyncio.sleep(0.5)


async def drive(settings: SimulateSettings, path: LoadPath, *, duration_s: float, sensors: int, batch: int,
                connections: int, prefix: str) -> dict[str, Any]:
    register = RegisterClient(settings.register_url, settings.admin_token.get_secret_value())
    try:
        await wait_until_ready(register.http, f"{settings.register_url}/readyz", settings.ready_timeout_s)
        console.print(f"declaring {sensors} load sensors ({prefix}*) through {settings.register_url} …")
        fleet = await register_fleet(register, prefix, sensors, Domain.TRAFFIC)
    finally:
        await register.close()
    # Milliseconds since the epoch: above every seq an earlier loadgen run used (< 1000 readings/s per sensor),
    # and below 2**44, which the acknowledged-key sets pack beside the sensor index.
    seq_base = time.time_ns() // 1_000_000
    if path is not LoadPath.KAFKA:
        await _wait_admitted(settings.ingest_url, fleet, seq_base)
    settle()  # the collector as the services settle it once ready (services/common/collector.py)
    sent = {"http": 0, "kafka": 0}
    runs: dict[str, Any] = {}
    if path in (LoadPath.HTTP, LoadPath.BOTH):
        runs["http"] = http_load(settings.ingest_url, fleet, batch=batch, connections=connections,
                                 duration_s=duration_s, seq_base=seq_base,
                                 progress=lambda n: sent.__setitem__("http", sent["http"] + n))
    if path in (LoadPath.KAFKA, LoadPath.BOTH):
        runs["kafka"] = kafka_load(settings.kafka, settings.topic(RAW_READINGS), fleet,
                                   duration_s=duration_s, seq_base=seq_base, window=5_000,
                                   progress=lambda n: sent.__setitem__("kafka", sent["kafka"] + n))
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[count]}"),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task(f"loadgen ({path.value})", total=duration_s, count="")
        began = time.monotonic()

        async def refresh() -> None:
            while True:
                progress.update(task, completed=min(duration_s, time.monotonic() - began),
                                count="  ".join(f"{name} {sent[name]:,} sent" for name in runs))
                await asyncio.sleep(0.25)

        refresher = asyncio.create_task(refresh())
        try:
            results: list[LoadResult] = await asyncio.gather(*runs.values())
        finally:
            refresher.cancel()
    return summarise(path, duration_s, sensors, batch, connections, dict(zip(runs, results, strict=True)))


def summarise(path: LoadPath, duration_s: float, sensors: int, batch: int, connections: int,
              results: dict[str, LoadResult]) -> dict[str, Any]:
    out: dict[str, Any] = {"path": path.value, "duration_s": duration_s, "sensors": sensors, "batch": batch,
                           "connections": connections}
    for name, load in results.items():
        out[f"{name}_sent"] = load.sent
        out[f"{name}_acked"] = len(load.accepted_keys)
        out[f"{name}_acked_readings_per_s"] = round(load.acked_per_s)
        out[f"{name}_errors"] = dict(load.errors)
    if "http" in results:
        load = results["http"]
        out.update(http_ack_p50_ms=_ms(percentile(load.latencies_ms, 50)),
                   http_ack_p99_ms=_ms(percentile(load.latencies_ms, 99)), http_requests=len(load.latencies_ms),
                   http_rejected=dict(load.rejected),
                   http_rejected_per_s={r: round(n / load.seconds, 1) for r, n in load.rejected.items()})
    out["acked_readings_per_s"] = sum(out[f"{name}_acked_readings_per_s"] for name in results)
    return out


def table(result: dict[str, Any]) -> Table:
    view = Table(title=f"citystream loadgen ({result['path']}, {result['duration_s']:g} s, {result['sensors']} "
                       f"sensors)")
    view.add_column("figure")
    view.add_column("value", justify="right")
    for name, label in (("http", "HTTP batches"), ("kafka", "Kafka-native (raw topic)")):
        if f"{name}_acked" not in result:
            continue
        view.add_row(f"{label}: sent / acknowledged", f"{result[f'{name}_sent']:,} / {result[f'{name}_acked']:,}")
        view.add_row(f"{label}: acknowledged readings/s", f"{result[f'{name}_acked_readings_per_s']:,}")
        if result[f"{name}_errors"]:
            view.add_row(f"{label}: errors", str(result[f"{name}_errors"]))
    if "http_acked" in result:
        view.add_row(f"HTTP ack p50 / p99 per {result['batch']}-reading request, ms",
                     f"{result['http_ack_p50_ms']} / {result['http_ack_p99_ms']}")
        for reason, count in sorted(result["http_rejected"].items()):
            view.add_row(f"rejected {reason} (HTTP)", f"{count:,} ({result['http_rejected_per_s'][reason]}/s)")
    view.add_row("acknowledged readings/s, all paths", f"{result['acked_readings_per_s']:,}", style="bold")
    return view


@app.callback()
def loadgen(
    duration: Annotated[float, typer.Option(min=1, help="Seconds of load.")] = 30,
    path: Annotated[LoadPath, typer.Option(help="HTTP batches, the raw Kafka topic, or both at once.")]
    = LoadPath.HTTP,
    sensors: Annotated[int, typer.Option(min=1, max=5000, help="Load sensors (traffic loops) to declare.")] = 500,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Readings per HTTP batch.")] = 1000,
    connections: Annotated[int, typer.Option(min=1, max=64, help="Concurrent HTTP connections.")] = 8,
    prefix: Annotated[str, typer.Option(help="Sensor id prefix of the load sensors.")] = "loadgen-",
) -> None:
    """Drive the running platform (CITYSTREAM_REGISTER_URL, CITYSTREAM_INGEST_URL, CITYSTREAM_KAFKA_BOOTSTRAP,
    CITYSTREAM_TOPIC_PREFIX) as hard as it can for --duration seconds."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    settings = SimulateSettings()
    try:
        result = asyncio.run(drive(settings, path, duration_s=duration, sensors=sensors, batch=batch,
                                   connections=connections, prefix=prefix))
    except (RuntimeError, OSError, TimeoutError, KafkaError) as problem:
        console.print(f"[red]error:[/red] {problem}")
        raise typer.Exit(code=1) from problem
    console.print(table(result))
    print(json.dumps(result, sort_keys=True), flush=True)
