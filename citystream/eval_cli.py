"""`citystream eval`: the detectors' quality with the NAB rules, on the labelled city scenarios and on `make run`'s
first hour (the simulator judged offline) → docs/detection.md; with --labels, a live run's stored alerts against the
simulator's labels. A tool of the `citystream` command: it drives the simulator, so it lives beside it, not in the
anomaly service (services never import the tool layer)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Detector quality.", no_args_is_help=True)
REPO = Path(__file__).resolve().parents[1]
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
        from services.anomaly.label_eval import score_labels

        raise typer.Exit(code=score_labels(labels, database_url, grace_s))
    from citystream.simulate import offline
    from services.anomaly import evaluate, report

    if not (nab_dir / "windows.json").exists():
        typer.echo(f"error: {nab_dir}/windows.json not found (use --nab-dir)", err=True)
        raise typer.Exit(code=2)
    nab_rows, scenario_rows = evaluate.nab_table(nab_dir), evaluate.scenario_table(seed, seeds)
    hour_rows = offline.city_hour_table()
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
