"""`citystream k8s generate|check`: the generated part of the Kubernetes manifests (deploy/k8s/base/generated/)."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(help="Kubernetes manifests under deploy/k8s/.", no_args_is_help=True)
console = Console(stderr=True)


@app.command("generate")
def generate() -> None:
    """Write KafkaTopics, KafkaUsers, workloads, PrometheusRule and dashboard ConfigMaps from their sources."""
    from citystream.k8s.generate import GENERATED_DIR, write

    written = write()
    console.print(f"{GENERATED_DIR}: {len(written)} file(s) rewritten: {', '.join(written) or 'all current'}")


@app.command("check")
def check() -> None:
    """Exit 1 when the committed generated manifests differ from their sources."""
    from citystream.k8s.generate import drifted

    stale = drifted()
    if stale:
        console.print(f"[red]stale:[/red] {', '.join(stale)}; run `citystream k8s generate`")
        raise typer.Exit(code=1)
    console.print("generated manifests are current")
