"""`citystream replay`: the detectors over a sensor's stored history (the same code as the live worker)."""

from __future__ import annotations

import asyncio
import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer

app = typer.Typer(help="Anomaly detection: replay history through the detectors.", no_args_is_help=True)


@app.callback()
def anomaly() -> None:
    """Anomaly detection commands (a group, so `replay` keeps its name when it is the only one)."""


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
