"""`citystream bench`: starts what it needs, drives the platform as hard as it can, prints a table and, as the last
line, one JSON object (also saved under bench/results/)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from citystream.bench.runner import Bench, BenchOptions, save
from citystream.simulate.settings import SimulateSettings

app = typer.Typer(help="Benchmark: ingest throughput, ack and alert latency, loss, beside the raw ceiling.",
                  invoke_without_command=True)
console = Console(stderr=True)


def _points(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


@app.callback()
def bench(
    phase_s: Annotated[float, typer.Option(min=1, help="Seconds of load per throughput phase.")] = 30,
    sensors: Annotated[int, typer.Option(min=10, max=5000, help="Load sensors (traffic loops).")] = 500,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Readings per HTTP batch.")] = 1000,
    connections: Annotated[int, typer.Option(min=1, max=64, help="Concurrent HTTP connections.")] = 8,
    scale: Annotated[str, typer.Option(help="Register-view scale points (sensors, comma-separated).")]
    = "1000,100000",
    batch_sizes: Annotated[str, typer.Option(help="HTTP batch sizes to compare.")] = "1,100,1000",
    results_dir: Annotated[Path, typer.Option(help="Where the JSON result is saved.")] = Path("bench/results"),
) -> None:
    """Run the benchmark (Kafka and TimescaleDB must be up: `make bench` starts them)."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    options = BenchOptions(phase_s=phase_s, sensors=sensors, batch=batch, connections=connections,
                           scale_points=_points(scale), batch_sizes=_points(batch_sizes), results_dir=results_dir)
    try:
        result = asyncio.run(Bench(SimulateSettings(), options, console).run())
    except (RuntimeError, OSError, TimeoutError) as problem:
        console.print(f"[red]error:[/red] {problem}")
        raise typer.Exit(code=1) from problem
    path = save(result, results_dir)
    console.print(_table(result))
    console.print(f"saved {path}")
    print(json.dumps(result, sort_keys=True), flush=True)


def _table(result: dict) -> Table:
    raw = result.get("raw_ceiling_readings_per_s") or 0
    table = Table(title=f"CityStream benchmark {result['run_id']}")
    for column in ("figure", "value", "raw ceiling", "target"):
        table.add_column(column)

    def ratio(value: float) -> str:
        return f"{raw:,} ({value / raw:.0%})" if raw else "-"

    rows = [
        ("end to end (HTTP → TimescaleDB), readings/s", f"{result['e2e_readings_per_s']:,}",
         ratio(result["e2e_readings_per_s"]), "≥ 25,000"),
        ("Kafka-native path → TimescaleDB, readings/s", f"{result['kafka_path_readings_per_s']:,}",
         ratio(result["kafka_path_readings_per_s"]), "≥ 50,000"),
        ("raw: aiokafka produce→consume (send_batch / send per record) / COPY, rows/s",
         (f"{result['raw_kafka_produce_consume_per_s']:,} / {result.get('raw_kafka_send_per_record_per_s', 0):,} / "
          f"{result['raw_copy_rows_per_s']:,}"), "", ""),
        ("ingest ack p50 / p99 at saturation, ms", f"{result['ingest_ack_p50_ms']} / {result['ingest_ack_p99_ms']}",
         "", ""),
        ("ingest ack p50 / p99 at half load, ms",
         f"{result.get('ingest_ack_half_load_p50_ms')} / {result.get('ingest_ack_half_load_p99_ms')}", "", "p99 ≤ 50"),
        ("ingest ack p50 / p99 at half load + anomaly worker, ms",
         f"{result.get('alert_phase_ack_p50_ms')} / {result.get('alert_phase_ack_p99_ms')}", "", ""),
        ("reading→alert p50 / p99 at half load, ms",
         (f"{result.get('alert_latency_p50_ms')} / {result.get('alert_latency_p99_ms')} "
          f"({result.get('alert_probes_missing')} probes missing)"), "", "p99 ≤ 500"),
        ("lost / duplicates", f"{result['lost']} / {result['duplicates']}", "", "0 / 0"),
    ]
    for rejection, per_s in result["phases"]["http"]["rejected_per_s"].items():
        rows.append((f"rejected {rejection}/s (HTTP phase)", str(per_s), "", ""))
    for point in result.get("batch_sizes", []):
        rows.append((f"HTTP batch {point['batch']}: acked/s, ack p99 ms",
                     f"{point['acked_per_s']:,}, {point['ack_p99_ms']}", "", ""))
    for point in result.get("register_view_scale", []):
        rows.append((f"register view {int(point['sensors']):,} sensors: MB, lookup ns",
                     f"{point['view_mb']}, {point['lookup_ns']}", "", ""))
    for name, usage in result.get("components", {}).items():
        rows.append((f"{name}: CPU s, peak MB", f"{usage['cpu_s']}, {usage['peak_rss_mb']}", "", ""))
    for domain, figures in result.get("detectors", {}).items():
        if isinstance(figures, dict):
            rows.append((f"detectors {domain}: µs/reading", str(figures["detectors_us_per_reading"]),
                         f"{figures['ceiling_us_per_reading']} µs", "≤ 20"))
    for row in rows:
        table.add_row(*row)
    return table
