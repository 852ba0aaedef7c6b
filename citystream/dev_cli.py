"""`citystream dev up | down | status | logs | reset`: the local runtime, Kafka and TimescaleDB, without Docker."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from citystream.devenv import kafka, postgres
from citystream.devenv.config import DevSettings
from citystream.devenv.process import RuntimeProblem
from citystream.devenv.startup import StartFailed, Step, start_all

app = typer.Typer(help="Run Kafka and TimescaleDB locally (no Docker).", no_args_is_help=True)
console = Console(stderr=True)

COMPONENTS = {"kafka": kafka, "timescaledb": postgres}


# What starting can raise that the user must act on; anything else is a bug and keeps its traceback.
START_PROBLEMS = (RuntimeProblem, subprocess.TimeoutExpired, OSError, subprocess.CalledProcessError)


def _fail(problem: Exception, hint: str = "") -> None:
    # Escaped: log lines and apt options in a message ("[signed-by=...]") are not rich markup.
    console.print(f"[red]error:[/red] {escape(str(problem))}{hint}")
    raise typer.Exit(code=1)


@app.command()
def up(
    brokers: Annotated[int | None, typer.Option(
        "--brokers", min=1, max=5,
        help="Kafka nodes: 3 runs a replicated cluster (topics with 3 replicas, min ISR 2). Default: what this runtime was formatted for, else 1 (CITYSTREAM_DEV_KAFKA_BROKERS).")] = None,
) -> None:
    """Install what is missing, then start Kafka and PostgreSQL + TimescaleDB. Idempotent. When a component
    fails to start, what this command started is stopped again (what was already running stays)."""
    settings = DevSettings() if brokers is None else DevSettings(kafka_brokers=brokers)
    steps = [Step(name, lambda m=module: m.status(settings)["state"] == "up", lambda m=module: m.start(settings),
                  lambda m=module: m.stop(settings))
             for name, module in COMPONENTS.items()]
    try:
        start_all(steps, START_PROBLEMS, console.print)
    except StartFailed as failed:
        rolled_back = f"\n(stopped again: {', '.join(failed.stopped)})" if failed.stopped else ""
        _fail(failed.problem, rolled_back)
    console.print(f"KAFKA_BOOTSTRAP={settings.kafka_bootstrap}\nDATABASE_URL={settings.database_url}")


@app.command("build-timescaledb")
def build_timescaledb() -> None:
    """Build TimescaleDB from Debian's source package into the cache (what `up` does when none is installed)."""
    from citystream.devenv import timescaledb

    settings = DevSettings()
    try:
        stage = timescaledb.build(settings, postgres.PG_MAJOR)
    except START_PROBLEMS as problem:
        _fail(problem)
    console.print(f"TimescaleDB for PostgreSQL {postgres.PG_MAJOR} is built in {stage}")


@app.command()
def env() -> None:
    """Print `export` lines that point the other commands (migrate, topics, kafka-users, services) at the local
    runtime. Kafka as its admin principal: `citystream run` gives each service its own instead."""
    from citystream.devenv import principals

    settings = DevSettings()
    for name, value in principals.admin_access(settings).environment().items():
        print(f"export {name}={shlex.quote(value)}")
    if settings.kafka_auth:  # `make bench` compares SASL with this unauthenticated listener
        print(f"export CITYSTREAM_KAFKA_ANONYMOUS_BOOTSTRAP={settings.kafka_anonymous_bootstrap}")
    print(f"export CITYSTREAM_DATABASE_URL={settings.database_url}")


@app.command()
def down() -> None:
    """Stop both servers; data stays."""
    settings = DevSettings()
    try:
        console.print(postgres.stop(settings))
        console.print(kafka.stop(settings))
    except RuntimeProblem as problem:
        _fail(problem)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False) -> None:
    """Each component: up/down, version, port (and TimescaleDB's license: apache or timescale)."""
    settings = DevSettings()
    report = {name: module.status(settings) for name, module in COMPONENTS.items()}
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        table = Table("component", "state", "version", "port", "license")
        for name, item in report.items():
            table.add_row(name, _state(item["state"]), str(item.get("version") or "-"), str(item["port"]),
                          str(item.get("license") or "-"))
            brokers = item.get("brokers", [])
            for broker in brokers if len(brokers) > 1 else ():  # a cluster: one row per node
                table.add_row(f"  broker {broker['node']}", _state(broker["state"]), f"pid {broker['pid'] or '-'}",
                              str(broker["port"]), "-")
        Console().print(table)
    if any(item["state"] != "up" for item in report.values()):
        raise typer.Exit(code=3)


def _state(state: str) -> str:
    colour = {"up": "green", "degraded": "yellow"}.get(state, "red")
    return f"[{colour}]{state}[/{colour}]"


@app.command()
def logs(
    component: Annotated[str, typer.Argument(help="kafka or timescaledb")] = "kafka",
    lines: Annotated[int, typer.Option("-n")] = 50,
    node: Annotated[int, typer.Option("--node", min=1, help="Which Kafka node of a cluster.")] = 1,
) -> None:
    """Print the last lines of a component's log."""
    if component not in COMPONENTS:
        _fail(ValueError(f"unknown component {component!r}; choose from {', '.join(COMPONENTS)}"))
    settings = DevSettings()
    if component == "kafka" and node not in settings.kafka_nodes:
        _fail(ValueError(f"this runtime's Kafka has {settings.kafka_brokers} node(s), no node {node}"))
    report = kafka.node_status(settings, node) if component == "kafka" else COMPONENTS[component].status(settings)
    path = report["log"]
    from citystream.devenv.process import tail
    from pathlib import Path

    print(tail(Path(path), lines))


@app.command()
def reset(yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False) -> None:
    """Stop everything and delete the local data (not the cached downloads and builds)."""
    settings = DevSettings()
    if not yes and not typer.confirm(f"Delete all data under {settings.state_dir}?"):
        raise typer.Exit(code=1)
    down()
    shutil.rmtree(settings.state_dir, ignore_errors=True)
    console.print(f"removed {settings.state_dir}")
