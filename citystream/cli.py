"""The `citystream` command: one entry point whose sub-commands each service contributes."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from citystream import dev_cli, eval_cli, kafka_users_cli
from citystream.bench import cli as bench_cli
from citystream.bench import loadgen as loadgen_cli
from citystream.k8s import cli as k8s_cli
from citystream.simulate import cli as simulate_cli
from services.anomaly import cli as anomaly_cli
from services.common.logs import configure_logging
from services.common.settings import CommonSettings
from services.ingest import cli as ingest_cli
from services.register import cli as register_cli
from services.register import retention_cli

app = typer.Typer(help="CityStream: a city's sensor streams, admitted, stored and watched in real time.",
                  no_args_is_help=True)
app.add_typer(dev_cli.app, name="dev")
app.registered_commands += eval_cli.app.registered_commands  # `citystream eval`
app.registered_commands += anomaly_cli.app.registered_commands  # `citystream replay`
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics from the catalogue in schemas/topics.py.", no_args_is_help=True)
schemas_app = typer.Typer(help="Generated contract files (JSON Schema, AsyncAPI).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(topics_app, name="topics")
app.add_typer(kafka_users_cli.app, name="kafka-users")
app.add_typer(schemas_app, name="schemas")
app.add_typer(register_cli.app, name="register")
app.add_typer(retention_cli.app, name="retention")
app.add_typer(ingest_cli.app, name="ingest")
app.add_typer(simulate_cli.app, name="simulate")
app.add_typer(bench_cli.app, name="bench")
app.add_typer(loadgen_cli.app, name="loadgen")
app.add_typer(k8s_cli.app, name="k8s")
console = Console(stderr=True)


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    configure_logging("DEBUG" if verbose else "INFO")


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending SQL migrations (idempotent)."""
    from services.common.migrate import migrate

    settings = CommonSettings()
    try:
        applied = asyncio.run(migrate(settings.database_url))
    except (TimeoutError, OSError) as problem:
        console.print(f"[red]error:[/red] database unreachable at {settings.database_url}: {problem}")
        raise typer.Exit(code=1) from problem
    console.print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")


@topics_app.command("create")
def topics_create() -> None:
    """Create every catalogue topic that does not exist yet (idempotent)."""
    from services.common.kafka import create_topics

    settings = CommonSettings()
    try:
        created = asyncio.run(create_topics(settings.kafka, prefix=settings.topic_prefix))
    except Exception as problem:  # aiokafka raises several unrelated types for "broker unreachable"
        console.print(f"[red]error:[/red] could not create topics on {settings.kafka_bootstrap}: {problem!r}")
        raise typer.Exit(code=1) from problem
    console.print(f"created {len(created)} topic(s): {', '.join(created) or 'all existed'}")


@topics_app.command("delete")
def topics_delete(
    prefix: Annotated[list[str], typer.Option("--prefix", help="Delete topics whose name starts with this "
                                              "(repeatable), e.g. test. or bench-anomaly-")],
    yes: Annotated[bool, typer.Option("--yes", help="Delete; without it the matches are only listed")] = False,
) -> None:
    """Delete topics left by interrupted test or benchmark runs. Never the platform's own catalogue topics."""
    from schemas.topics import CATALOGUE
    from services.common.kafka import delete_topics, topics_with_prefixes

    settings = CommonSettings()
    if any(not p.strip() for p in prefix):
        console.print("[red]error:[/red] --prefix must not be empty (it would match every topic)")
        raise typer.Exit(code=2)
    live = {settings.topic(spec.name) for spec in CATALOGUE}
    try:
        names = asyncio.run(topics_with_prefixes(settings.kafka, prefix))
        if live & set(names):
            console.print(f"[red]error:[/red] --prefix matches the platform's own topics "
                          f"({', '.join(sorted(live & set(names)))}); nothing deleted")
            raise typer.Exit(code=2)
        if yes:  # exactly the topics checked above, not a second listing
            asyncio.run(delete_topics(settings.kafka, names))
    except typer.Exit:
        raise
    except Exception as problem:  # aiokafka raises several unrelated types for "broker unreachable"
        console.print(f"[red]error:[/red] could not list or delete topics on {settings.kafka_bootstrap}: "
                      f"{problem!r}")
        raise typer.Exit(code=1) from problem
    verb = "deleting" if yes else "would delete (add --yes)"
    console.print(f"{verb} {len(names)} topic(s){': ' if names else ''}{', '.join(names[:20])}"
                  f"{' …' if len(names) > 20 else ''}")


@topics_app.command("list")
def topics_list() -> None:
    """Print the catalogue: name, partitions, cleanup policy, writer."""
    from schemas.topics import CATALOGUE

    for spec in CATALOGUE:
        print(f"{spec.name}\t{spec.partitions}\t{spec.cleanup_policy}\t{spec.writer}")


@schemas_app.command("generate")
def schemas_generate() -> None:
    """Rewrite schemas/json/*.schema.json, schemas/asyncapi.yaml and schemas/openapi/ingest.json from the code."""
    from schemas import generate

    for path in generate.write():
        console.print(f"wrote {path}")
    console.print(f"wrote {write_ingest_openapi()}")


INGEST_OPENAPI_PATH = Path(__file__).resolve().parent.parent / "schemas" / "openapi" / "ingest.json"


def ingest_openapi() -> str:
    """Ingest's OpenAPI document as committed (HTTP clients generate from it; a unit test checks it is current)."""
    from services.ingest.http_app import create_app
    from services.ingest.settings import IngestSettings

    return json.dumps(create_app(IngestSettings()).openapi(), indent=2, ensure_ascii=False) + "\n"


def write_ingest_openapi() -> Path:
    INGEST_OPENAPI_PATH.parent.mkdir(exist_ok=True)
    INGEST_OPENAPI_PATH.write_text(ingest_openapi(), encoding="utf-8")
    return INGEST_OPENAPI_PATH


@app.command("run")
def run(
    simulator: Annotated[bool, typer.Option("--simulator/--no-simulator", help="Also run the city simulator.")] = True,
    members: Annotated[int, typer.Option(min=1, max=4, help="Processes per scalable stage: ingest-http (one shared "
                                         "port), ingest-gate, ingest-sink and anomaly (consumer groups).")] = 1,
) -> None:
    """Start Kafka, TimescaleDB, every service, Prometheus (Grafana if installed) and the simulator; print the URLs;
    Ctrl-C stops everything."""
    from rich.markup import escape

    from citystream.dev_cli import START_PROBLEMS
    from citystream.run import run_platform

    try:
        code = run_platform(with_simulator=simulator, members=members)
    except START_PROBLEMS as problem:
        console.print(f"[red]error:[/red] {escape(str(problem))}")
        raise typer.Exit(code=1) from problem
    raise typer.Exit(code=code)


def main() -> None:
    logging.captureWarnings(True)
    app()


if __name__ == "__main__":
    main()
