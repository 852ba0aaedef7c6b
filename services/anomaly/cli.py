"""`citystream eval` (detector quality → docs/detection.md) and `citystream replay` (detectors over history)."""

from __future__ import annotations

import asyncio
import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer

app = typer.Typer(help="Anomaly detection: evaluate detectors, replay history.", no_args_is_help=True)
REPO = Path(__file__).resolve().parents[2]
# nab-dev sits in `shared/datasets` beside the checkout (or beside the folder of several checkouts).
NAB_DEV = next((base / "shared/datasets/nab-dev" for base in (REPO.parent, REPO.parent.parent)
                if (base / "shared/datasets/nab-dev").is_dir()), REPO.parent / "shared/datasets/nab-dev")


@app.command("eval")
def evaluate_command(
    nab_dir: Annotated[Path, typer.Option(help="A NAB-layout folder (windows.json + data/): nab-dev by default")]
    = NAB_DEV,
    output: Annotated[Path, typer.Option(help="Markdown file to write")] = REPO / "docs/detection.md",
    seed: Annotated[int, typer.Option(help="First scenario seed")] = 0,
    seeds: Annotated[int, typer.Option(min=1, help="Scenario seeds run, from --seed")] = 3,
    labels: Annotated[Path | None, typer.Option(help="Instead: score this `citystream simulate` labels file against "
                                                     "the alerts and rejections stored in TimescaleDB")] = None,
    database_url: Annotated[str | None, typer.Option(help="With --labels (default: CITYSTREAM_DATABASE_URL)")] = None,
    grace_s: Annotated[float, typer.Option(help="With --labels: an alert this long after an episode still counts")]
    = 600,
) -> None:
    """Score the detectors with the NAB rules and on the labelled city scenarios; write the tables.

    With --labels: precision, recall and delay of the platform's stored alerts against a simulator run's labels."""
    if labels is not None:
        from citystream.simulate.evalcli import score_labels

        raise typer.Exit(code=score_labels(labels, database_url, grace_s))
    from services.anomaly import evaluate, report

    if not (nab_dir / "windows.json").exists():
        typer.echo(f"error: {nab_dir}/windows.json not found (use --nab-dir)", err=True)
        raise typer.Exit(code=2)
    nab_rows, scenario_rows = evaluate.nab_table(nab_dir), evaluate.scenario_table(seed, seeds)
    hour_rows = evaluate.city_hour_table()
    shown = next((str(nab_dir.relative_to(base)) for base in (REPO.parent, REPO.parent.parent)
                  if nab_dir.is_relative_to(base)), str(nab_dir))
    text = report.render(nab_rows, scenario_rows, nab_dir=shown,
                         scales=evaluate.SCALES, zs=evaluate.Z_THRESHOLDS, seeds=range(seed, seed + seeds),
                         hour_rows=hour_rows)
    output.parent.mkdir(parents=True, exist_ok=True)
    # The hand-written sections from "## Throughput" on (loadprobe figures) are kept across regenerations.
    kept = output.read_text().partition(report.KEPT_FROM)[1:] if output.exists() else ("", "")
    output.write_text(text.rstrip("\n") + ("\n\n" + "".join(kept) if kept[0] else "\n"))
    typer.echo(text)


def _parse_time(text: str) -> float:
    at = datetime.fromisoformat(text.strip())
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


async def _fetch(database_url: str, sensor: str, start: datetime, end: datetime):
    """The sensor's readings in [start, end) and its register row (None if the register does not know it)."""
    from services.common.db import close_pool, create_pool

    pool = await create_pool(database_url)
    try:
        rows = await pool.fetch("SELECT seq, observed_at, domain, metrics FROM readings WHERE sensor_id = $1"
                                " AND observed_at >= $2 AND observed_at < $3 ORDER BY observed_at, seq",
                                sensor, start, end)
        registered = await pool.fetchrow("SELECT domain, metrics, reporting_interval_s FROM register_sensors"
                                         " WHERE sensor_id = $1", sensor)
    finally:
        await close_pool(pool)
    return rows, registered


def _json(value):
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


def register_profile(row):
    """What the worker's register view makes of the same registration: declared ranges and interval."""
    from schemas.register import MetricDeclaration
    from services.anomaly.detectors import Profile

    declared = [MetricDeclaration.model_validate(m) for m in _json(row["metrics"])]
    return Profile(ranges={m.name: (m.min, m.max) for m in declared}, interval_s=row["reporting_interval_s"])


@app.command("replay")
def replay_command(
    csv_file: Annotated[Path | None, typer.Argument(help="CSV with columns timestamp,value")] = None,
    sensor: Annotated[str | None, typer.Option(help="Replay this sensor's readings from TimescaleDB")] = None,
    start: Annotated[datetime | None, typer.Option("--from")] = None,
    end: Annotated[datetime | None, typer.Option("--to")] = None,
    domain: Annotated[str, typer.Option(help="Domain label of a CSV series (generic detectors run on it)")] = "energy",
    interval_s: Annotated[float | None, typer.Option(help="A CSV series' declared reporting interval (s); "
                                                          "default: learned from the series")] = None,
    tick_s: Annotated[float, typer.Option(help="The worker's timer interval (silence ticks)")] = 5.0,
    database_url: Annotated[str | None, typer.Option(help="Default: CITYSTREAM_DATABASE_URL")] = None,
    scores: Annotated[Path, typer.Option(help="Per-reading scores (CSV)")] = Path("replay-scores.csv"),
    alerts: Annotated[Path, typer.Option(help="Alert events that would have been raised (JSON lines)")] =
    Path("replay-alerts.jsonl"),
) -> None:
    """Run the worker's detectors, lifecycle and silence ticks over a CSV or a time range of one sensor; write
    scores + alerts. A registered sensor is judged with its register profile (ranges, interval), as live."""
    from services.anomaly.detectors import Obs, Profile
    from services.anomaly.engine import Engine
    from services.anomaly.replay import SCORE_COLUMNS, replay
    from services.common.settings import CommonSettings

    until = None
    if csv_file is not None:
        with csv_file.open() as handle:
            rows = list(csv.DictReader(handle))
        if not rows or not {"timestamp", "value"} <= set(rows[0]):
            typer.echo("error: the CSV needs a header with columns timestamp,value", err=True)
            raise typer.Exit(code=2)
        sensor_id = sensor or "replay-csv"
        engine, profile = Engine(domain, "generic", with_rollups=False), Profile(interval_s=interval_s)
        readings = [Obs(sensor_id, i, _parse_time(r["timestamp"]), {"value": float(r["value"])})
                    for i, r in enumerate(rows)]
    elif sensor and start and end:
        start, end = (at if at.tzinfo else at.replace(tzinfo=UTC) for at in (start, end))
        db_rows, registered = asyncio.run(_fetch(database_url or CommonSettings().database_url, sensor, start, end))
        if not db_rows:
            typer.echo(f"no readings of {sensor} in that range", err=True)
            raise typer.Exit(code=1)
        engine = Engine(db_rows[0]["domain"], with_rollups=False)
        profile = register_profile(registered) if registered is not None else Profile()
        if registered is None:
            typer.echo(f"warning: {sensor} is not in the register; no declared ranges or interval", err=True)
        readings = [Obs(sensor, r["seq"], r["observed_at"].timestamp(),
                        {k: float(v) for k, v in _json(r["metrics"]).items() if v is not None}) for r in db_rows]
        until = end.timestamp()  # a sensor that fell silent before --to is found silent, as the worker would
    else:
        typer.echo("error: give a CSV file, or --sensor with --from and --to", err=True)
        raise typer.Exit(code=2)
    result = replay(engine, readings, profile, until=until, tick_s=tick_s)
    with scores.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(SCORE_COLUMNS)
        writer.writerows(result.rows)
    with alerts.open("wb") as handle:
        for event in result.events:
            handle.write(orjson.dumps(event.model_dump(mode="json", exclude_none=True)) + b"\n")
    opened = sum(e.event_type.value == "opened" for e in result.events)
    typer.echo(f"{result.readings} readings, {result.ticks} timer ticks, {len(result.events)} alert events "
               f"({opened} opened) -> {scores}, {alerts}")
