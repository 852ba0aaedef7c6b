"""`citystream eval --labels FILE` (and its alias `citystream simulate score`): prints the tables of
services.anomaly.label_scoring and, as the last line, the figures as one JSON object."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer
from rich.console import Console

from services.anomaly.label_scoring import evaluate, render
from services.common.settings import CommonSettings

console = Console(stderr=True)


def score_labels(labels: Path, database_url: str | None, grace_s: float) -> int:
    """Exit code: 0 scored, 2 no such labels file, 1 database unreachable."""
    if not labels.is_file():
        console.print(f"[red]error:[/red] labels file {labels} not found (written by `citystream simulate --labels`)")
        return 2
    url = database_url or CommonSettings().database_url
    try:
        result = asyncio.run(evaluate(url, labels, grace_s))
    except (OSError, TimeoutError) as problem:
        console.print(f"[red]error:[/red] database unreachable at {url}: {problem}")
        return 1
    for table in render(result):
        console.print(table)
    d = result.detection
    console.print(f"precision {d.precision:.2f} ({d.true_alerts}/{d.alerts} opened alerts inside an episode)  "
                  f"recall {d.recall:.2f} ({d.detected}/{d.labels} episodes)  median delay "
                  f"{'-' if d.median_delay_s is None else f'{d.median_delay_s:.0f} s'}")
    typer.echo(json.dumps(result.as_dict(), sort_keys=True))
    return 0
