"""`citystream retention run`: one retention pass (what the register's task does each interval), for cron/CronJob."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated

import asyncpg
import typer
from rich.console import Console
from rich.table import Table

from services.register.retention import retention_once
from services.register.settings import RegisterSettings

app = typer.Typer(help="Delete readings, rejections and rollups past each sensor's declared retention_days.",
                  no_args_is_help=True)
console = Console(stderr=True)


@app.command("run")
def run(
    unregistered_days: Annotated[int | None, typer.Option(
        "--unregistered-days", min=0, help="Retention of rows of sensors not in the register "
        "(default CITYSTREAM_RETENTION_UNREGISTERED_DAYS, 30).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run's report as JSON on stdout.")] = False,
) -> None:
    """One pass; recorded in the register's audit log. Connects as CITYSTREAM_REGISTER_RETENTION_DATABASE_URL
    (the citystream_retention role), else CITYSTREAM_DATABASE_URL. Exit 0 also when another run held the lock."""
    settings = RegisterSettings()
    dsn = settings.register_retention_database_url or settings.database_url
    days = settings.retention_unregistered_days if unregistered_days is None else unregistered_days
    try:
        report = asyncio.run(retention_once(dsn, days))
    except (OSError, TimeoutError, asyncpg.PostgresError) as problem:
        console.print(f"[red]error:[/red] retention run failed: {problem!r}")
        raise typer.Exit(code=1) from problem
    if report is None:
        console.print("another retention run holds the lock; nothing done")
        return
    if as_json:
        sys.stdout.write(json.dumps(report.as_json()) + "\n")
        return
    table = Table("table", "rows deleted", "unregistered rows", "chunks dropped", "rows in dropped chunks",
                  title=f"retention run: {report.sensors} sensor(s), {report.duration_s:.2f} s")
    for name, outcome in report.tables.items():
        table.add_row(name, str(outcome.rows_deleted), str(outcome.unregistered_rows_deleted),
                      str(outcome.chunks_dropped), str(outcome.rows_in_dropped_chunks))
    Console().print(table)
