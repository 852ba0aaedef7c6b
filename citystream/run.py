"""`citystream run`: the whole platform on this machine — infrastructure, every service that exists, the simulator.

Ctrl-C (or SIGTERM) stops every process it started, the infrastructure included, and leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from citystream.devenv import kafka, postgres
from citystream.devenv.config import DevSettings
from citystream.devenv.process import spawn_server, stop_pid, tail
from services.common.roles import APP_ROLE, READER_ROLE, with_role

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Component:
    name: str
    module: str
    args: tuple[str, ...]
    port: int | None
    url_path: str = "/"
    database_role: str | None = None  # least privilege: None = the migrations' owner role

    def available(self) -> bool:
        return importlib.util.find_spec(self.module) is not None


COMPONENTS = (
    Component("register", "services.register", (), 8081, "/map", database_role=APP_ROLE),
    Component("ingest-http", "services.ingest", ("http",), 8082, "/docs"),
    Component("ingest-gate", "services.ingest", ("gate",), 8083, "/metrics"),
    Component("ingest-sink", "services.ingest", ("sink",), 8084, "/metrics", database_role=APP_ROLE),
    Component("anomaly", "services.anomaly", ("worker",), 8085, "/metrics"),
    Component("api", "services.api", (), 8080, "/ops/#token=dev-operator"),
)
SIMULATOR = Component("simulator", "citystream.simulate", ("--rate", "20"), None)


def _prepare_infrastructure(settings: DevSettings) -> list[str]:
    """Start what is not running; return the names of what this command started (and must stop)."""
    started = []
    if kafka.status(settings)["state"] != "up":
        log.info(kafka.start(settings))
        started.append("kafka")
    if postgres.status(settings)["state"] != "up":
        log.info(postgres.start(settings))
        started.append("postgres")
    from services.common.kafka import create_topics
    from services.common.migrate import migrate

    asyncio.run(migrate(settings.database_url))
    asyncio.run(create_topics(settings.kafka_bootstrap))
    return started


def _spawn(component: Component, env: dict[str, str], logs_dir: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", component.module, *component.args]
    if component.database_role:
        env = env | {"CITYSTREAM_DATABASE_URL": with_role(env["CITYSTREAM_DATABASE_URL"], component.database_role)}
    return spawn_server(command, logs_dir / f"{component.name}.log", env=env)


def run_platform(with_simulator: bool = True) -> int:
    settings = DevSettings()
    started_infra = _prepare_infrastructure(settings)
    env = os.environ | {
        "CITYSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "CITYSTREAM_DATABASE_URL": settings.database_url,
        "CITYSTREAM_API_DATABASE_URL": with_role(settings.database_url, READER_ROLE),
    }
    wanted = [c for c in COMPONENTS if c.available()]
    if with_simulator and SIMULATOR.available():
        wanted.append(SIMULATOR)
    processes = {component.name: (component, _spawn(component, env, settings.logs_dir)) for component in wanted}
    print("CityStream is running:")
    for component, _ in processes.values():
        where = f"http://127.0.0.1:{component.port}{component.url_path}" if component.port else "(no port)"
        print(f"  {component.name:<12} {where}")
    print(f"  {'kafka':<12} {settings.kafka_bootstrap}")
    print(f"  {'timescaledb':<12} {settings.database_url}")
    print(f"Logs: {settings.logs_dir}   Press Ctrl-C to stop everything.")
    stopping = False

    def _request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)
    try:
        while not stopping:
            for name, (component, process) in list(processes.items()):
                if process.poll() is not None:
                    print(f"{name} exited with code {process.returncode}; last log lines:\n"
                          f"{tail(settings.logs_dir / f'{name}.log')}", flush=True)
                    del processes[name]
            time.sleep(0.5)
    finally:
        print("stopping…", flush=True)
        for _, process in processes.values():
            if process.poll() is None:
                stop_pid(process.pid, timeout_s=15)
        if "postgres" in started_infra:
            print(postgres.stop(settings))
        if "kafka" in started_infra:
            print(kafka.stop(settings))
    return 0
