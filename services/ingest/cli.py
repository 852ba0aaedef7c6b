"""`citystream ingest send FILE`: posts a JSON or CSV batch of readings to the HTTP ingest, prints each outcome."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import orjson
import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="The HTTP ingest (POST /v1/readings at --url).", no_args_is_help=True)
console = Console()
DEFAULT_URL = "http://127.0.0.1:8082"
CSV_FIELDS = ("sensor_id", "seq", "observed_at")  # every other CSV column is a metric


class BadFile(ValueError):
    pass


@app.callback()
def ingest() -> None:
    """Send readings to the HTTP ingest."""  # a callback keeps `send` a sub-command even while it is the only one


def load_readings(text: str, suffix: str) -> list[dict[str, Any]]:
    """Readings from a `.json` file (`{"readings": [...]}` or a bare list) or a `.csv` file (one reading a row:
    `seq`, `observed_at`, optional `sensor_id`, then one column per metric; empty cells are left out)."""
    if suffix.lower() == ".csv":
        return [_csv_reading(line, row) for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2)]
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as problem:
        raise BadFile(f"not JSON: {problem}") from None
    readings = document.get("readings") if isinstance(document, dict) else document
    if not isinstance(readings, list):
        raise BadFile('expected {"readings": [...]} or a JSON list of readings')
    return readings


def _csv_reading(line: int, row: dict[str, str]) -> dict[str, Any]:
    try:
        reading: dict[str, Any] = {"seq": int(row["seq"]), "observed_at": row["observed_at"]}
        if row.get("sensor_id"):
            reading["sensor_id"] = row["sensor_id"]
        reading["metrics"] = {name: float(value) for name, value in row.items()
                              if name not in CSV_FIELDS and value not in (None, "")}
    except (KeyError, TypeError, ValueError) as problem:
        raise BadFile(f"line {line}: {problem!r}") from None
    return reading


def _client(url: str, credential: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"authorization": f"Bearer {credential}"}, timeout=30)


@app.command("send")
def send(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
         credential: Annotated[str, typer.Option("--credential", envvar="CITYSTREAM_INGEST_CREDENTIAL",
                                                 help="`<key_id>.<secret>` of the sensor or gateway.")],
         url: Annotated[str, typer.Option("--url", envvar="CITYSTREAM_INGEST_URL")] = DEFAULT_URL,
         retries: Annotated[int, typer.Option(help="Re-sends after a 503 (waits Retry-After).")] = 3) -> None:
    """Post one batch; a table lists every reading's outcome. Exit 1 unless every reading was accepted."""
    try:
        readings = load_readings(file.read_text(encoding="utf-8-sig"), file.suffix)
    except BadFile as problem:
        console.print(f"[red]error:[/red] {file}: {problem}")
        raise typer.Exit(code=1) from None
    with _client(url, credential) as client:
        for attempt in range(retries + 1):
            response = client.post("/v1/readings", json={"readings": readings})
            if response.status_code != 503 or attempt == retries:
                break
            time.sleep(float(response.headers.get("retry-after", "1")))
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    outcomes = body.get("outcomes")
    if not outcomes:  # refused as a whole (413, 400, 503, ...)
        console.print(f"[red]HTTP {response.status_code}[/red] {body.get('reason', '')}: "
                      f"{body.get('detail', response.text[:300])}")
        raise typer.Exit(code=1)
    table = Table("#", "sensor", "seq", "outcome", "reason", "field", "detail", title=f"HTTP {response.status_code}")
    for item in outcomes:
        accepted = item["status"] == "accepted"
        table.add_row(str(item["index"]), str(item.get("sensor_id") or "-"), str(item.get("seq", "-")),
                      "[green]accepted[/green]" if accepted else "[red]rejected[/red]",
                      item.get("reason") or "", item.get("field") or "", item.get("detail") or "")
    console.print(table)
    console.print(f"accepted {body['accepted']}, rejected {body['rejected']}")
    if body["rejected"]:
        raise typer.Exit(code=1)
