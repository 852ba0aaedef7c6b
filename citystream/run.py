"""`citystream run`: the whole platform on this machine — infrastructure, every service that exists, Prometheus
(and Grafana when installed), the simulator.

Ctrl-C (or SIGTERM) stops every process it started, the infrastructure included, and leaves nothing behind —
also when it arrives during start-up, and when a later step of start-up fails.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import yaml

from citystream.devenv import cluster, kafka, postgres, principals, process
from citystream.devenv.config import REPO_ROOT, DevSettings
from citystream.devenv.process import RuntimeProblem, port_open, spawn_server, stop_pid, tail
from schemas.access import SERVICE_PRINCIPALS
from services.common.readiness import Readiness
from services.common.roles import APP_ROLE, READER_ROLE, RETENTION_ROLE, with_role

log = logging.getLogger(__name__)

PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"
GRAFANA_DIR = REPO_ROOT / "deploy" / "grafana"
GRAFANA_HOMES = (Path("/usr/share/grafana"), Path("/usr/local/share/grafana"), Path("/opt/grafana"))


@dataclass(frozen=True)
class Component:
    name: str
    module: str
    args: tuple[str, ...]
    port: int | None
    url_path: str = "/"
    database_role: str | None = None  # least privilege: None = the migrations' owner role
    port_env: str | None = None  # the service's own setting for its port; `run` honours it when set

    @property
    def role(self) -> str:
        """The service a member runs (`ingest-gate` for `ingest-gate#2`)."""
        return self.name.split("#", 1)[0]

    def available(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def port_in(self, env: dict[str, str]) -> int | None:
        if self.port_env and env.get(self.port_env):
            return int(env[self.port_env])
        return self.port


COMPONENTS = (
    Component("register", "services.register", (), 8081, "/map", APP_ROLE, "CITYSTREAM_REGISTER_PORT"),
    # ingest-http reaches the database only with a shared quota (several members): as the application role.
    Component("ingest-http", "services.ingest", ("http",), 8082, "/docs", APP_ROLE, "CITYSTREAM_INGEST_HTTP_PORT"),
    Component("ingest-gate", "services.ingest", ("gate",), 8083, "/metrics", None, "CITYSTREAM_INGEST_GATE_PORT"),
    Component("ingest-sink", "services.ingest", ("sink",), 8084, "/metrics", APP_ROLE, "CITYSTREAM_INGEST_SINK_PORT"),
    Component("anomaly", "services.anomaly", ("worker",), 8085, "/metrics", None, "CITYSTREAM_ANOMALY_WEB_PORT"),
    Component("api", "services.api", (), 8080, "/ops/#token=dev-operator", None, "CITYSTREAM_API_PORT"),
)
# Stages that scale out as several processes (`citystream run --members N`): ingest-http on one shared port, the
# others as members of their consumer groups, each with its own metrics port (+100 per member) and local state.
SCALABLE = {"ingest-http": None, "ingest-gate": "CITYSTREAM_INGEST_GATE_DATA_DIR",
            "ingest-sink": None, "anomaly": "CITYSTREAM_ANOMALY_DATA_DIR"}
MEMBER_PORT_STEP = 100
SIMULATOR = Component("simulator", "citystream.simulate", ("--rate", "20"), None)
# How long `run` waits for every service's /readyz before it reports what is still missing (and keeps running:
# a Faust worker recovering a large table may take longer, and says so in its readiness checks).
READY_TIMEOUT_S = 120.0


@dataclass
class Platform:
    """What this command started, so that stopping stops exactly that (and nothing another engineer runs)."""

    settings: DevSettings
    infrastructure: list[str] = field(default_factory=list)  # "kafka", "postgres": started (or being started) here
    processes: dict[str, tuple[Component, subprocess.Popen]] = field(default_factory=dict)
    extra_urls: list[tuple[str, str]] = field(default_factory=list)

    def prepare_infrastructure(self) -> None:
        """Start what is not running. Each server is recorded as ours *before* it starts, so an interruption
        half-way through its start still stops it."""
        settings = self.settings
        if kafka.status(settings)["state"] != "up":
            self.infrastructure.append("kafka")
            outcome = kafka.start(settings)
            if "already running" in outcome:  # another command started it moments ago: not ours to stop
                self.infrastructure.remove("kafka")
            log.info(outcome)
        if postgres.status(settings)["state"] != "up":
            self.infrastructure.append("postgres")
            outcome = postgres.start(settings)
            if "already running" in outcome:
                self.infrastructure.remove("postgres")
            log.info(outcome)
        from services.common.kafka import create_topics
        from services.common.migrate import migrate

        asyncio.run(migrate(settings.database_url))
        asyncio.run(create_topics(principals.admin_access(settings)))

    def service_env(self) -> dict[str, str]:
        settings = self.settings
        env = os.environ | {
            "CITYSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "CITYSTREAM_DATABASE_URL": settings.database_url,
            "CITYSTREAM_API_DATABASE_URL": with_role(settings.database_url, READER_ROLE),
            # Retention as declared: the register deletes expired rows hourly, as the role allowed to.
            "CITYSTREAM_REGISTER_RETENTION_DATABASE_URL": with_role(settings.database_url, RETENTION_ROLE),
        }
        env.setdefault("CITYSTREAM_REGISTER_RETENTION_INTERVAL_S", "3600")
        # Local state of the stream processors lives with this runtime's data (a second runtime gets its own).
        env.setdefault("CITYSTREAM_ANOMALY_DATA_DIR", str(settings.state_dir / "anomaly"))
        env.setdefault("CITYSTREAM_INGEST_GATE_DATA_DIR", str(settings.state_dir / "ingest-gate"))
        # Faust's own topics (changelogs) as replicated as the offsets on a cluster; Faust reads this variable.
        env.setdefault("TOPIC_REPLICATION_FACTOR", str(cluster.internal_replication(settings)[0]))
        # The simulator finds the register and the ingest where this command put them (ports may be moved).
        by_name = {component.name: component for component in COMPONENTS}
        env.setdefault("CITYSTREAM_REGISTER_URL", f"http://127.0.0.1:{by_name['register'].port_in(env)}")
        env.setdefault("CITYSTREAM_INGEST_URL", f"http://127.0.0.1:{by_name['ingest-http'].port_in(env)}")
        return env

    def spawn(self, component: Component, env: dict[str, str]) -> None:
        command = [sys.executable, "-m", component.module, *component.args]
        if component.database_role:
            env = env | {"CITYSTREAM_DATABASE_URL": with_role(env["CITYSTREAM_DATABASE_URL"], component.database_role)}
        if component.role in SERVICE_PRINCIPALS:  # each service as its own Kafka principal, under the catalogue's ACLs
            env = env | principals.service_access(self.settings, component.role).environment()
        self.processes[component.name] = (
            component, spawn_server(command, self.settings.logs_dir / f"{component.name}.log", env=env),
        )

    def start_prometheus(self, ports: dict[str, int]) -> None:
        binary = shutil.which("prometheus")
        port = self.settings.prometheus_port
        if not binary:
            print("  prometheus   not installed (apt-get install prometheus, or `make system-packages`); "
                  "metrics are not scraped", flush=True)
            return
        if port_open(port):
            print(f"  prometheus   port {port} is in use; not started (set CITYSTREAM_DEV_PROMETHEUS_PORT)",
                  flush=True)
            return
        config = write_prometheus_config(self.settings, ports)
        command = [
            binary, f"--config.file={config}", f"--storage.tsdb.path={config.parent / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=7d",
        ]
        component = Component("prometheus", "", (), port, "/targets")
        self.processes["prometheus"] = (component, spawn_server(command, self.settings.logs_dir / "prometheus.log"))

    def start_grafana(self) -> None:
        binary = shutil.which("grafana") or shutil.which("grafana-server")
        port = self.settings.grafana_port
        if not binary:
            print("  grafana      not installed (it is not in this machine's package registries); for the "
                  "dashboards run `docker compose up` on a host with Docker (see README), or install Grafana "
                  "from grafana.com and `make run` starts it", flush=True)
            return
        if port_open(port):
            print(f"  grafana      port {port} is in use; not started (set CITYSTREAM_DEV_GRAFANA_PORT)", flush=True)
            return
        command, env = grafana_command(self.settings, binary)
        component = Component("grafana", "", (), port, "/dashboards")
        self.processes["grafana"] = (component, spawn_server(command, self.settings.logs_dir / "grafana.log", env=env))

    def supervise(self) -> None:
        """Until Ctrl-C: report a process that exits (with its log) and keep the others running."""
        while True:
            for name, (_, child) in list(self.processes.items()):
                if child.poll() is not None:
                    print(f"{name} exited with code {child.returncode}; last log lines:\n"
                          f"{tail(self.settings.logs_dir / f'{name}.log')}", flush=True)
                    del self.processes[name]
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop everything this command started: services first, then the infrastructure."""
        for _, child in self.processes.values():
            if child.poll() is None:
                stop_pid(child.pid, timeout_s=15)
        if "postgres" in self.infrastructure:
            # Interrupted inside `pg_ctl start`: the postmaster may be a moment away from writing its pid file.
            process.wait_until(lambda: postgres.running(self.settings), 2)
            self._stop_server(postgres)
        if "kafka" in self.infrastructure:
            self._stop_server(kafka)
        # A server spawned but interrupted before its pid file was written is still a child of ours.
        for pid, child in list(process._children.items()):
            if child.poll() is None:
                stop_pid(pid, timeout_s=30)

    def _stop_server(self, module) -> None:
        try:
            print(module.stop(self.settings), flush=True)
        except (RuntimeProblem, OSError, subprocess.TimeoutExpired) as problem:
            print(f"error while stopping: {problem}", flush=True)


def members_of(component: Component, members: int, env: dict[str, str]) -> list[tuple[Component, dict[str, str]]]:
    """The processes to start for a component, each with its env: one, or `members` of a scalable stage. ingest-http
    members share the port (SO_REUSEPORT) and one quota per sensor (leased from PostgreSQL); the others get the port
    + 100 × n and a data directory of their own."""
    if component.name not in SCALABLE or members <= 1:
        return [(component, env)]
    base_port = component.port_in(env)
    shared = ({"CITYSTREAM_INGEST_HTTP_REUSE_PORT": "true", "CITYSTREAM_INGEST_HTTP_SHARED_QUOTA": "true"}
              if component.name == "ingest-http" else {})
    started = [(component, env | shared)]
    for index in range(1, members):
        port = base_port if shared else base_port + MEMBER_PORT_STEP * index
        own = shared | {component.port_env: str(port)}
        if (data_dir := SCALABLE[component.name]) and env.get(data_dir):
            own[data_dir] = f"{env[data_dir]}-{index + 1}"  # a Faust member's tables are its own
        member = replace(component, name=f"{component.name}#{index + 1}", port=port, port_env=None)
        started.append((member, env | own))
    return started


def write_prometheus_config(settings: DevSettings, ports: dict[str, int | list[int]]) -> Path:
    """deploy/prometheus/prometheus.yml for this runtime: the same jobs, targets on the ports the services got (every
    member's, when a stage runs several)."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["rule_files"] = [str((PROMETHEUS_DIR / path).resolve()) for path in config.get("rule_files", [])]
    for job in config["scrape_configs"]:
        name = job["job_name"].removeprefix("citystream-")
        for static in job.get("static_configs", []):
            if name in ports:
                found = ports[name] if isinstance(ports[name], list) else [ports[name]]
                static["targets"] = [f"127.0.0.1:{port}" for port in dict.fromkeys(found)]
    target = settings.state_dir / "prometheus" / "prometheus.yml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("# Written by `citystream run` from deploy/prometheus/prometheus.yml; edits are overwritten.\n"
                      + yaml.safe_dump(config, sort_keys=False))
    return target


def grafana_command(settings: DevSettings, binary: str) -> tuple[list[str], dict[str, str]]:
    """Grafana with the repository's dashboards and datasources pointed at this runtime."""
    root = settings.state_dir / "grafana"
    provisioning = root / "provisioning"
    (provisioning / "datasources").mkdir(parents=True, exist_ok=True)
    (provisioning / "dashboards").mkdir(parents=True, exist_ok=True)
    sources = yaml.safe_load((GRAFANA_DIR / "provisioning" / "datasources" / "citystream.yml").read_text())
    for source in sources["datasources"]:
        if source["type"] == "prometheus":
            source["url"] = f"http://127.0.0.1:{settings.prometheus_port}"
        else:
            source["url"] = f"127.0.0.1:{settings.postgres_port}"
    (provisioning / "datasources" / "citystream.yml").write_text(yaml.safe_dump(sources, sort_keys=False))
    boards = yaml.safe_load((GRAFANA_DIR / "provisioning" / "dashboards" / "citystream.yml").read_text())
    for provider in boards["providers"]:
        provider["options"]["path"] = str(GRAFANA_DIR / "dashboards")
    (provisioning / "dashboards" / "citystream.yml").write_text(yaml.safe_dump(boards, sort_keys=False))
    home = next((path for path in GRAFANA_HOMES if path.exists()), Path(binary).resolve().parent.parent)
    command = [binary, "server"] if Path(binary).name == "grafana" else [binary]
    command += [
        f"--homepath={home}",
        f"cfg:default.paths.data={root / 'data'}",
        f"cfg:default.paths.logs={settings.logs_dir / 'grafana'}",
        f"cfg:default.paths.provisioning={provisioning}",
        "cfg:default.server.http_addr=127.0.0.1",
        f"cfg:default.server.http_port={settings.grafana_port}",
    ]
    env = os.environ | {"CITYSTREAM_DB_HOST": f"127.0.0.1:{settings.postgres_port}"}
    return command, env


def wait_until_ready(urls: dict[str, str], timeout_s: float, get=httpx.get, poll_s: float = 0.5,
                     clock=time.monotonic, sleep=time.sleep) -> dict[str, Readiness | None]:
    """Poll each service's /readyz (the readiness contract) until it answers ready or `timeout_s` passed; the last
    answer per service (None: never answered) tells what is still missing."""
    answers: dict[str, Readiness | None] = dict.fromkeys(urls)
    deadline = clock() + timeout_s
    while True:
        for name, url in urls.items():
            if answers[name] is not None and answers[name].status == "ready":
                continue
            try:
                answers[name] = Readiness.model_validate(get(url, timeout=2).json())
            except (httpx.HTTPError, ValueError):  # not listening yet, or not the contract (yet)
                pass
        if all(a is not None and a.status == "ready" for a in answers.values()) or clock() >= deadline:
            return answers
        sleep(poll_s)


def readiness_lines(answers: dict[str, Readiness | None]) -> list[str]:
    """One line per service: ready, or which checks fail with their reason codes."""
    lines = []
    for name, answer in answers.items():
        if answer is None:
            lines.append(f"  {name:<12} not answering /readyz yet")
        elif answer.status == "ready":
            lines.append(f"  {name:<12} ready")
        else:
            failing = ", ".join(f"{check}={result.detail}" for check, result in answer.checks.items() if not result.ok)
            lines.append(f"  {name:<12} not ready: {failing}")
    return lines


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def run_platform(with_simulator: bool = True, members: int = 1) -> int:
    settings = DevSettings()
    platform = Platform(settings)
    # Before anything starts: SIGTERM behaves like Ctrl-C, and both unwind through the `finally` below.
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    interrupted_at_start = True
    try:
        platform.prepare_infrastructure()
        env = platform.service_env()
        wanted = [c for c in COMPONENTS if c.available()]
        if with_simulator and SIMULATOR.available():
            wanted.append(SIMULATOR)
        started: dict[str, list[int]] = {}
        for component in wanted:
            for member, member_env in members_of(component, members, env):
                platform.spawn(member, member_env)
                if member.port_in(member_env):
                    started.setdefault(member.role, []).append(member.port_in(member_env))
        print("CityStream is running:", flush=True)
        for component, _ in platform.processes.values():
            port = component.port_in(env)
            where = f"http://127.0.0.1:{port}{component.url_path}" if port else "(no port)"
            print(f"  {component.name:<12} {where}", flush=True)
        platform.start_prometheus(started)
        platform.start_grafana()
        for name in ("prometheus", "grafana"):
            if name in platform.processes:
                component = platform.processes[name][0]
                print(f"  {name:<12} http://127.0.0.1:{component.port}{component.url_path}", flush=True)
        print(f"  {'kafka':<12} {settings.kafka_bootstrap}")
        print(f"  {'timescaledb':<12} {settings.database_url}")
        print(f"Logs: {settings.logs_dir}   Press Ctrl-C to stop everything.", flush=True)
        interrupted_at_start = False
        services = {component.name: f"http://127.0.0.1:{component.port_in(env)}/readyz"
                    for component, _ in platform.processes.values()
                    if component.role in {c.name for c in COMPONENTS} and component.port_in(env)}
        answers = wait_until_ready(services, READY_TIMEOUT_S)
        ready = sum(1 for a in answers.values() if a is not None and a.status == "ready")
        print(f"Readiness ({ready}/{len(answers)} ready; each service's /readyz):", flush=True)
        print("\n".join(readiness_lines(answers)), flush=True)
        platform.supervise()
    except KeyboardInterrupt:
        if interrupted_at_start:
            print("interrupted during start-up", flush=True)
            return 130
        return 0
    finally:
        # A second Ctrl-C must not cut the clean-up short and strand a server.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("stopping…", flush=True)
        platform.stop()
    return 0
