"""`citystream simulate`: the city against the running platform; `citystream simulate score`: alias of
`citystream eval --labels` (labels vs stored alerts and rejections)."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from citystream.simulate.runner import RunOptions, Simulation, Tally
from citystream.simulate.settings import SimulateSettings

log = logging.getLogger(__name__)
console = Console(stderr=True)
app = typer.Typer(help="A believable city, deterministic for a seed, publishing through the register and ingest.",
                  invoke_without_command=True)
DEFAULT_LABELS = Path(".citystream/simulate/labels.jsonl")


@app.callback()
def simulate(
    ctx: typer.Context,
    rate: Annotated[float, typer.Option(min=0.1, help="Readings per second (wall time) from the normal fleet.")] = 20,
    sensors: Annotated[int, typer.Option(min=3, max=100_000, help="Traffic loops, energy meters and bins.")] = 300,
    seed: Annotated[int, typer.Option(help="Same seed → same city, same anomalies.")] = 7,
    speed: Annotated[float, typer.Option(min=1.0, help="Sim seconds per wall second while replaying the backfill.")]
    = 1.0,
    backfill_hours: Annotated[float, typer.Option(min=0, max=160, help="Start the sim clock this far back.")] = 0.0,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Readings per HTTP batch.")] = 100,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl-C).")]
    = None,
    labels: Annotated[Path, typer.Option(help="Where to write the labels (JSON lines).")] = DEFAULT_LABELS,
    prefix: Annotated[str, typer.Option(help="Sensor id prefix.")] = "sim-",
    anomalies: Annotated[bool, typer.Option("--anomalies/--no-anomalies")] = True,
    bad_traffic: Annotated[bool, typer.Option("--bad-traffic/--no-bad-traffic")] = True,
    anomaly_first_after: Annotated[int, typer.Option(min=1, help="Rounds of normal readings before the first "
                                                                 "anomaly (detectors learn the sensor meanwhile).")]
    = 8,
    anomaly_opening_spacing: Annotated[int, typer.Option(min=1, help="Rounds between the first anomalies (one of "
                                                                     "each kind), so every kind shows early.")] = 2,
    anomaly_spacing: Annotated[int, typer.Option(min=1, help="Rounds between anomalies after that.")] = 30,
) -> None:
    """Register the city's sensors and publish their readings, anomalies and bad traffic until Ctrl-C."""
    if ctx.invoked_subcommand is not None:
        return
    options = RunOptions(seed=seed, sensors=sensors, rate=rate, speed=speed, backfill_s=backfill_hours * 3600,
                         batch_size=batch, duration_s=duration, labels_path=labels, prefix=prefix,
                         anomalies=anomalies, bad_traffic=bad_traffic, anomaly_first_after=anomaly_first_after,
                         anomaly_opening_spacing=anomaly_opening_spacing, anomaly_spacing=anomaly_spacing)
    raise typer.Exit(code=run(SimulateSettings(), options))


def run(settings: SimulateSettings, options: RunOptions) -> int:
    """Runs until SIGINT/SIGTERM (or the duration); prints the tally; exit code 1 when setup failed."""

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request drowns the tally

    async def main() -> Tally:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        return await Simulation(settings, options).run(stop)

    try:
        tally = asyncio.run(main())
    except (TimeoutError, RuntimeError, OSError) as problem:
        console.print(f"[red]error:[/red] {problem}")
        return 1
    _print_tally(tally, options.labels_path)
    return 0


def _print_tally(tally: Tally, labels_path: Path) -> None:
    table = Table(title="simulation")
    table.add_column("who")
    table.add_column("outcome")
    table.add_column("readings", justify="right")
    table.add_row("fleet", "ACCEPTED", str(tally.accepted))
    for reason, count in sorted(tally.rejected.items()):
        table.add_row("fleet", reason, str(count))
    for actor, outcomes in sorted(tally.by_actor.items()):
        for outcome, count in sorted(outcomes.items()):
            table.add_row(f"bad: {actor}", outcome, str(count))
    console.print(table)
    console.print(f"labels: {labels_path}   requests: {tally.requests}   retries: {tally.retries}")
    missing = tally.missing_reasons()
    if missing:
        console.print(f"[yellow]bad traffic not (yet) refused with its expected reason:[/yellow] {', '.join(missing)}")


@app.command("score")
def score_command(
    labels: Annotated[Path, typer.Option(help="Labels file written by `citystream simulate`.")] = DEFAULT_LABELS,
    grace_s: Annotated[float, typer.Option(help="An alert this long after an episode's end still counts.")] = 600,
    database_url: Annotated[str | None, typer.Option(help="Default: CITYSTREAM_DATABASE_URL.")] = None,
) -> None:
    """Alias of `citystream eval --labels`: stored alerts and rejections against the labels of a run."""
    from services.anomaly.label_eval import score_labels

    raise typer.Exit(code=score_labels(labels, database_url, grace_s))
