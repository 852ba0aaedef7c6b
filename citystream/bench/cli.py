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
from citystream.devenv.config import DevSettings
from citystream.simulate.settings import SimulateSettings

app = typer.Typer(help="Benchmark: ingest throughput, ack and alert latency, loss, beside the raw ceiling.",
                  invoke_without_command=True)
console = Console(stderr=True)


def _points(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


# `--quick`: every phase runs, with tiny load and short phases (a smoke run of the runner, not a measurement).
QUICK = {"phase_s": 3.0, "sensors": 20, "batch": 100, "connections": 2, "probes": 4, "batch_sizes": (1, 100),
         "batch_phase_s": 2.0, "half_load_s": 3.0, "scale_points": (1_000,), "ceiling_records": 5_000,
         "kafka_max_records": 20_000, "bad_every": 20, "alert_settle_s": 10.0, "detectors": False,
         "detected_phase_s": 3.0, "detected_drain_s": 30.0}


@app.callback()
def bench(
    phase_s: Annotated[float, typer.Option(min=1, help="Seconds of load per throughput phase.")] = 30,
    sensors: Annotated[int, typer.Option(min=10, max=5000, help="Load sensors (traffic loops).")] = 500,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Readings per HTTP batch.")] = 1000,
    connections: Annotated[int, typer.Option(min=1, max=64, help="Concurrent HTTP connections.")] = 8,
    scale: Annotated[str, typer.Option(help="Register-view scale points (sensors, comma-separated).")]
    = "1000,100000",
    batch_sizes: Annotated[str, typer.Option(help="HTTP batch sizes to compare.")] = "1,100,1000",
    batch_phase_s: Annotated[float, typer.Option(min=0.5, help="Seconds per batch-size point.")] = 8,
    probes: Annotated[int, typer.Option(min=1, max=1000, help="Overflow probe bins in the alert phase.")] = 40,
    bad_every: Annotated[int, typer.Option(min=0, help="Every n-th reading of the load is a bad one (unknown "
                                                       "sensor, undeclared metric, out of range); 0: none.")] = 100,
    ceiling_records: Annotated[int, typer.Option(min=1000, help="Records per raw-ceiling measurement.")] = 200_000,
    kafka_max_records: Annotated[int, typer.Option(min=1000, help="Cap of the Kafka-native phase.")] = 300_000,
    detected_phase_s: Annotated[float, typer.Option(min=1, help="Seconds of HTTP load with the anomaly workers "
                                                               "judging (stored and judged).")] = 60,
    anomaly_workers: Annotated[int, typer.Option(min=1, max=16, help="Anomaly worker processes (one consumer "
                                                                     "group) in the detected and alert phases.")] = 1,
    scale_out_workers: Annotated[int, typer.Option(min=0, max=16, help="Run the detected phase again with this "
                                                                       "many workers (0: no second run).")] = 2,
    http_workers: Annotated[int, typer.Option(min=1, max=16, help="Ingest-http processes (the load's "
                                                                  "connections are spread over them).")] = 1,
    sink_workers: Annotated[int, typer.Option(min=1, max=16, help="Ingest-sink processes (one consumer "
                                                                  "group).")] = 1,
    max_lag_s: Annotated[float, typer.Option(min=0.1, help="Lag gate of the detected phase: readings sent and "
                                                           "not yet judged stay within this many seconds of the "
                                                           "judging rate.")] = 1.0,
    detectors: Annotated[bool, typer.Option("--detectors/--no-detectors",
                                            help="Run the detector micro-benchmark.")] = True,
    quick: Annotated[bool, typer.Option("--quick", help="Tiny load, short phases: a smoke run of every phase "
                                                        "(overrides the sizes above); not a measurement.")] = False,
    results_dir: Annotated[Path, typer.Option(help="Where the JSON result is saved.")] = Path("bench/results"),
    logs_dir: Annotated[Path, typer.Option(help="Service logs, one folder per run.")] = Path(".citystream/bench"),
) -> None:
    """Run the benchmark (Kafka and TimescaleDB must be up: `make bench` starts them)."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    options = BenchOptions(phase_s=phase_s, sensors=sensors, batch=batch, connections=connections,
                           scale_points=_points(scale), batch_sizes=_points(batch_sizes), batch_phase_s=batch_phase_s,
                           probes=probes, bad_every=bad_every, ceiling_records=ceiling_records,
                           kafka_max_records=kafka_max_records, detectors=detectors, results_dir=results_dir,
                           detected_phase_s=detected_phase_s, anomaly_workers=anomaly_workers,
                           scale_out_workers=scale_out_workers, http_workers=http_workers, sink_workers=sink_workers,
                           max_lag_s=max_lag_s,
                           logs_dir=logs_dir, state_dir=DevSettings().state_dir)
    if quick:
        options = BenchOptions(**{**options.__dict__, **QUICK})
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
        ((f"end to end, stored and judged ({result.get('e2e_detected_anomaly_workers')} anomaly worker(s)), "
          f"readings/s; lag at end, s"),
         f"{result.get('e2e_detected_readings_per_s') or 0:,}; {result.get('e2e_detected_lag_end_s')}",
         ratio(result.get("e2e_detected_readings_per_s") or 0), "≥ 30,000; lag ≤ 2 s"),
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
         (f"{_latency(result, 'p50')} / {_latency(result, 'p99')} "
          f"({result.get('alert_probes_missing')} of {result.get('alert_probes')} probes missing)"), "", "p99 ≤ 500"),
        ((f"lost / duplicates ({result.get('readings_accounted', 0):,} acknowledged readings, "
         f"{len(result.get('phases_accounted', []))} phases)"), f"{result['lost']} / {result['duplicates']}", "",
         "0 / 0"),
        ("bad readings sent / accepted", (f"{result.get('bad_readings_sent', 0):,} / "
                                         f"{result.get('bad_readings_accepted', 0)}"), "", "accepted 0"),
    ]
    rejections = result.get("rejections_per_s", {})
    for source, label in (("http_answers", "HTTP phase, answers"), ("http_stored", "HTTP phase, rejections table"),
                          ("kafka_stored", "Kafka phase, rejections table")):
        for rejection, per_s in rejections.get(source, {}).items():
            rows.append((f"rejected {rejection}/s ({label})", str(per_s), "", ""))
    for point in result.get("batch_sizes", []):
        rows.append((f"HTTP batch {point['batch']}: acked/s, ack p99 ms",
                     f"{point['acked_per_s']:,}, {point['ack_p99_ms']}", "", ""))
    for point in result.get("register_view_scale", []):
        rows.append((f"register view {int(point['sensors']):,} sensors: MB, lookup ns",
                     f"{point['view_mb']}, {point['lookup_ns']}", "", ""))
    for row in result.get("anomaly_workers_scale_out", []):
        rows.append((f"stored and judged with {row['anomaly_workers']} anomaly worker(s): readings/s, lag at end s",
                     f"{row['e2e_detected_readings_per_s']:,}, {row['lag_end_s']}", "", ""))
    for phase_key, label in (("cpu_us_per_reading", "stored and judged"),
                             ("cpu_us_per_reading_without_detection", "HTTP phase, no worker")):
        figures = result.get(phase_key) or {}
        if figures:
            rows.append((f"CPU µs/reading ({label})", ", ".join(f"{k} {v}" for k, v in figures.items()), "", ""))
    for name, usage in result.get("components", {}).items():
        rows.append((f"{name}: CPU s, peak MB ({usage.get('processes', 1)} processes)",
                     f"{usage['cpu_s']}, {usage['peak_rss_mb']}", "", ""))
    rows.append(("elapsed, s", str(result.get("elapsed_s")), "", "≤ 600"))
    for domain, figures in result.get("detectors", {}).items():
        if isinstance(figures, dict):
            rows.append((f"detectors {domain}: µs/reading", str(figures["detectors_us_per_reading"]),
                         f"{figures['ceiling_us_per_reading']} µs", "≤ 20"))
    for row in rows:
        table.add_row(*row)
    return table


def _latency(result: dict, which: str) -> str:
    value = result.get(f"alert_latency_{which}_ms")
    return str(value) if value is not None else str(result.get(f"alert_latency_{which}_beyond") or "-")
