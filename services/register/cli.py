"""`citystream register ...`: CSV import/export and expiring sensors, through the register's HTTP API."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from services.register import csvio

app = typer.Typer(help="The sensor register (HTTP API at --url, bearer token from --token).", no_args_is_help=True)
console = Console(stderr=True)

Url = Annotated[str, typer.Option("--url", envvar="CITYSTREAM_REGISTER_URL", help="Register base URL.")]
Token = Annotated[str, typer.Option("--token", envvar="CITYSTREAM_REGISTER_TOKEN",
                                    help="Admin or owner bearer token.")]
DEFAULT_URL = "http://127.0.0.1:8081"


def _client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=30)


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


def _refusal(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
        return str(body.get("field") or "-"), str(body.get("detail") or response.text)
    except ValueError:
        return "-", f"HTTP {response.status_code}: {response.text[:200]}"


@app.command("import")
def import_csv(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
               url: Url = DEFAULT_URL, token: Token = "") -> None:
    """Declare every sensor of a CSV file (one request per row); prints a per-row report. Exit 1 if any row failed."""
    rows = list(csvio.parse(file.read_text(encoding="utf-8-sig")))
    report: list[tuple[int, str, str, str]] = []  # line, outcome, field, detail
    try:
        with _client(url, token) as client, Progress(console=console, transient=False) as progress:
            task = progress.add_task(f"importing {file.name}", total=len(rows))
            for line, parsed in rows:
                if isinstance(parsed, csvio.RowError):
                    report.append((line, "failed", parsed.field, parsed.detail))
                else:
                    response = client.post("/v1/sensors", json=parsed)
                    if response.status_code == 201:
                        report.append((line, "declared", "sensor_id", response.json()["sensor_id"]))
                    else:
                        report.append((line, "failed", *_refusal(response)))
                progress.advance(task)
    except httpx.HTTPError as problem:
        raise _fail(f"register unreachable at {url}: {problem}") from problem
    table = Table("line", "outcome", "field", "detail", title=f"import of {file}")
    for line, outcome, field, detail in report:
        table.add_row(str(line), f"[green]{outcome}[/]" if outcome == "declared" else f"[red]{outcome}[/]",
                      field, detail)
    Console().print(table)
    failed = sum(outcome == "failed" for _, outcome, _, _ in report)
    console.print(f"{len(report) - failed} declared, {failed} failed")
    if failed:
        raise typer.Exit(code=1)


@app.command("export")
def export_csv(output: Annotated[Path | None, typer.Option("--output", "-o", help="File (default stdout).")] = None,
               url: Url = DEFAULT_URL, token: Token = "") -> None:
    """Write the sensors the token may see as CSV (re-importable)."""
    try:
        with _client(url, token) as client:
            response = client.get("/v1/sensors/export.csv")
    except httpx.HTTPError as problem:
        raise _fail(f"register unreachable at {url}: {problem}") from problem
    if response.status_code != 200:
        raise _fail("%s: %s" % _refusal(response))
    if output is None:
        sys.stdout.write(response.text)
    else:
        output.write_text(response.text, encoding="utf-8")
        console.print(f"wrote {output}")


@app.command("expiring")
def expiring(days: Annotated[float, typer.Option("--days", min=0.001, help="Horizon in days.")] = 30,
             url: Url = DEFAULT_URL, token: Token = "") -> None:
    """List sensors whose active_until falls within the next N days."""
    try:
        with _client(url, token) as client:
            response = client.get("/v1/sensors/expiring", params={"days": days})
    except httpx.HTTPError as problem:
        raise _fail(f"register unreachable at {url}: {problem}") from problem
    if response.status_code != 200:
        raise _fail("%s: %s" % _refusal(response))
    table = Table("sensor_id", "owner", "status", "active_until", title=f"sensors expiring within {days:g} day(s)")
    for sensor in response.json():
        table.add_row(sensor["sensor_id"], sensor["owner_organisation"], sensor["status"], sensor["active_until"])
    Console(width=160).print(table)
