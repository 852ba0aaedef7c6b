"""`citystream run` on a private runtime (own data directory, every port moved): it prints the URLs, the services
answer /healthz, Prometheus scrapes them, and Ctrl-C — also during start-up, also after a failed start — leaves no
process behind: not the Kafka JVM, not PostgreSQL, not a service (they run in sessions of their own)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from citystream.devenv.config import DevSettings
from citystream.run import COMPONENTS
from tests.support.infra import Infrastructure
from tests.support.isolated_runtime import isolated_runtime, require_local_runtime
from tests.support.processes import REPO, free_port


class RunCommand:
    """`citystream run --no-simulator` in its own process group, as a terminal would run it; output collected."""

    def __init__(self, settings: DevSettings, service_ports: dict[str, int], prometheus_port: int) -> None:
        env = {key: value for key, value in os.environ.items() if not key.startswith("CITYSTREAM_")}
        env |= {
            "CITYSTREAM_DEV_CACHE_DIR": str(settings.cache_dir),
            "CITYSTREAM_DEV_STATE_DIR": str(settings.state_dir),
            "CITYSTREAM_DEV_KAFKA_PORT": str(settings.kafka_port),
            "CITYSTREAM_DEV_KAFKA_CONTROLLER_PORT": str(settings.kafka_controller_port),
            "CITYSTREAM_DEV_KAFKA_ANONYMOUS_PORT": str(settings.kafka_anonymous_port),
            "CITYSTREAM_DEV_POSTGRES_PORT": str(settings.postgres_port),
            "CITYSTREAM_DEV_KAFKA_HEAP_MB": str(settings.kafka_heap_mb),
            "CITYSTREAM_DEV_PROMETHEUS_PORT": str(prometheus_port),
            "CITYSTREAM_DEV_GRAFANA_PORT": str(free_port()),
        }
        env |= {component.port_env: str(service_ports[component.name]) for component in COMPONENTS}
        self.settings = settings
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "citystream.cli", "run", "--no-simulator"], cwd=REPO, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def text(self) -> str:
        """The output with line wrapping undone, for matching messages."""
        return " ".join(self.output.split())

    def wait_for(self, check, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if check():
                return
            if self.process.poll() is not None:
                raise AssertionError(f"`citystream run` exited ({self.process.returncode}) before {what}:\n"
                                     f"{self.output}")
            time.sleep(0.25)
        raise AssertionError(f"no {what} in {timeout_s} s:\n{self.output}")

    def ctrl_c(self) -> int:
        os.killpg(self.process.pid, signal.SIGINT)  # what the terminal sends to its foreground process group
        return self.process.wait(timeout=120)

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._reader.join(timeout=10)
        self.process.stdout.close()


def processes_of(settings: DevSettings) -> list[psutil.Process]:
    """Every process belonging to this runtime: its state dir is in the command line or the environment."""
    marker = str(settings.state_dir)
    found = []
    for candidate in psutil.process_iter(["cmdline", "status"]):
        try:
            if candidate.info["status"] == psutil.STATUS_ZOMBIE or candidate.pid == os.getpid():
                continue
            if marker in " ".join(candidate.info["cmdline"] or ()) or marker in "".join(
                    f"{k}={v}" for k, v in candidate.environ().items()):
                found.append(candidate)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def assert_all_gone(pids: set[int], settings: DevSettings) -> None:
    def alive(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    survivors = {pid for pid in pids if alive(pid)}
    strays = [f"{p.pid} {' '.join(p.cmdline())[:160]}" for p in processes_of(settings)]
    assert not survivors and not strays, f"left running: {survivors} {strays}"


@pytest.fixture
def private(infrastructure: Infrastructure):
    require_local_runtime(infrastructure)
    with isolated_runtime("run-test-") as settings:
        ports = {component.name: free_port() for component in COMPONENTS}
        runs: list[RunCommand] = []

        def start() -> RunCommand:
            runs.append(RunCommand(settings, ports, prometheus_port))
            return runs[-1]

        prometheus_port = free_port()
        yield settings, ports, prometheus_port, start
        for run in runs:
            run.close()
        for leftover in processes_of(settings):  # never leave a stray behind, even when the test failed
            leftover.kill()


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def prometheus_targets(port: int) -> dict[str, str]:
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/targets", timeout=2).json()
    except (httpx.TransportError, ValueError):
        return {}
    return {target["labels"]["job"]: target["health"] for target in answer["data"]["activeTargets"]}


def test_run_serves_everything_and_ctrl_c_stops_every_process_it_started(private):
    settings, ports, prometheus_port, start = private
    run = start()
    run.wait_for(lambda: "Press Ctrl-C to stop everything" in run.output, 150, "URL listing")
    for component in COMPONENTS:
        assert f"http://127.0.0.1:{ports[component.name]}" in run.output, run.output
    assert f"http://127.0.0.1:{prometheus_port}" in run.output
    if shutil.which("grafana") or shutil.which("grafana-server"):
        assert "grafana      http://127.0.0.1:" in run.output, run.output
    else:  # one line saying so and how to get the dashboards
        assert "grafana not installed" in run.text and "docker compose" in run.text, run.output
    run.wait_for(lambda: all(healthy(port) for port in ports.values()), 120, "/healthz from every service")
    run.wait_for(lambda: "Readiness (" in run.output, 150, "the readiness report")  # after every /readyz answered
    assert f"Readiness ({len(COMPONENTS)}/{len(COMPONENTS)} ready" in run.output, run.output
    jobs = {f"citystream-{name}" for name in ports}
    run.wait_for(lambda: jobs <= {job for job, health in prometheus_targets(prometheus_port).items()
                                  if health == "up"}, 60, f"Prometheus scraping {sorted(jobs)}")

    started = {child.pid: child.name() for child in psutil.Process(run.process.pid).children(recursive=True)}
    postmaster = int((settings.state_dir / "postgres" / "data" / "postmaster.pid").read_text().split()[0])
    assert "java" in started.values() and "prometheus" in started.values(), started
    assert sum(1 for name in started.values() if name.startswith("python")) >= len(COMPONENTS), started
    pids = set(started) | {postmaster} | {child.pid for child in psutil.Process(postmaster).children(recursive=True)}

    assert run.ctrl_c() == 0, run.output
    assert_all_gone(pids, settings)
    assert "Kafka stopped" in run.output and "PostgreSQL stopped" in run.output, run.output


@pytest.mark.parametrize("moment", ["kafka starting", "postgres starting"])
def test_ctrl_c_during_start_up_stops_what_had_started(private, moment):
    settings, _, _, start = private
    marker = {"kafka starting": settings.state_dir / "kafka" / "kafka.pid",
              "postgres starting": settings.state_dir / "postgres" / "data" / "postmaster.pid"}[moment]
    run = start()
    run.wait_for(marker.exists, 120, str(marker))
    started = {child.pid for child in psutil.Process(run.process.pid).children(recursive=True)}
    assert run.ctrl_c() == 130, run.output
    assert "interrupted during start-up" in run.output
    assert "Traceback" not in run.output, run.output
    assert_all_gone(started, settings)


def test_a_failed_postgres_start_stops_the_kafka_it_started(private):
    settings, _, _, start = private
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", settings.postgres_port))
        squatter.listen()
        run = start()
        code = run.process.wait(timeout=150)
    assert code == 1, run.output
    assert f"Port {settings.postgres_port} is in use" in run.text, run.output
    assert "Kafka stopped" in run.output
    assert_all_gone(set(), settings)
    assert not Path(settings.state_dir / "kafka" / "kafka.pid").exists()
