"""Platform services as subprocesses on free ports (`python -m services.<svc> [role]`), with CPU and memory sampled
by psutil, for the benchmark and the simulator's end-to-end test. Each process gets its own env (topic prefix,
database, ports, group ids), so a run never disturbs another one sharing the broker.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from citystream.bench.usage import ProcessTable, ProcessTree


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Service:
    name: str
    args: tuple[str, ...]
    env: dict[str, str]
    port: int
    log_path: Path
    cwd: Path | None = None
    ready_path: str = "/readyz"
    process: subprocess.Popen | None = None
    usage: ProcessTree | None = field(default=None, repr=False)

    @property
    def role(self) -> str:
        """What the process is (`anomaly` for `anomaly`, `anomaly#2`, ...): usage is summed per role."""
        return self.name.split("#", 1)[0]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", *self.args], env=os.environ | self.env,
                                            stdout=out, stderr=subprocess.STDOUT, cwd=self.cwd,
                                            start_new_session=True)
        self.usage = ProcessTree(self.name, self.process.pid)
        self.usage.begin()

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}:\n"
                                   f"{self.tail()}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} not ready on {self.url}{self.ready_path} after {timeout_s:.0f} s; "
                           f"see {self.log_path}:\n{self.tail()}")

    def sample(self, table: ProcessTable | None = None) -> None:
        """CPU and peak resident memory of the process and any children it starts (citystream.bench.usage)."""
        if self.usage is not None:
            self.usage.sample(table)

    @property
    def cpu_s(self) -> float:
        return 0.0 if self.usage is None else self.usage.cpu_s

    @property
    def peak_rss_bytes(self) -> int:
        return 0 if self.usage is None else self.usage.peak_rss_bytes

    def stop(self, timeout_s: float = 20.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.sample()
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(5)

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: no shutdown, no last commit."""
        if self.process is not None and self.process.poll() is None:
            self.sample()
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def instance_name(role: str, index: int) -> str:
    """The first process of a role is named by the role, the next ones `<role>#2`, `<role>#3`, ..."""
    return role if index == 0 else f"{role}#{index + 1}"


def platform_services(*, bootstrap: str, database_url: str, topic_prefix: str, run_id: str, logs_dir: Path,
                      roles: tuple[str, ...] = ("register", "ingest-http", "ingest-sink"),
                      instances: dict[str, int] | None = None,
                      shared_http_port: bool = False) -> dict[str, Service]:
    """The requested services, each on a free port, all on one topic prefix and database; not started yet.

    `instances` runs more than one process of a role (`ingest-http`: separate servers the load is spread over, or
    with `shared_http_port` all on one port, SO_REUSEPORT; `ingest-gate`, `ingest-sink`, `anomaly`: members of one
    consumer group)."""
    common = {"CITYSTREAM_KAFKA_BOOTSTRAP": bootstrap, "CITYSTREAM_DATABASE_URL": database_url,
              "CITYSTREAM_TOPIC_PREFIX": topic_prefix, "CITYSTREAM_LOG_LEVEL": "WARNING",
              "CITYSTREAM_INSTANCE_ID": run_id}
    work = logs_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    services: dict[str, Service] = {}
    http_port = free_port()
    for role in roles:
        for index in range((instances or {}).get(role, 1)):
            name = instance_name(role, index)
            port = http_port if role == "ingest-http" and shared_http_port else free_port()
            log_path = logs_dir / f"{name.replace('#', '-')}.log"
            if role == "register":
                env = {"CITYSTREAM_REGISTER_PORT": str(port), "CITYSTREAM_REGISTER_RELAY_POLL_S": "0.1"}
                services[name] = Service(name, ("services.register",), common | env, port, log_path)
            elif role == "ingest-http":
                env = {"CITYSTREAM_INGEST_HTTP_PORT": str(port),
                       "CITYSTREAM_INGEST_HTTP_REUSE_PORT": "true" if shared_http_port else "false"}
                services[name] = Service(name, ("services.ingest", "http"), common | env, port, log_path)
            elif role == "ingest-gate":
                env = {"CITYSTREAM_INGEST_GATE_PORT": str(port),
                       "CITYSTREAM_INGEST_GATE_APP_ID": f"bench-gate-{run_id}",
                       "CITYSTREAM_INGEST_GATE_DATA_DIR": str(work / name.replace("#", "-"))}
                services[name] = Service(name, ("services.ingest", "gate"), common | env, port, log_path)
            elif role == "ingest-sink":
                env = {"CITYSTREAM_INGEST_SINK_PORT": str(port),
                       "CITYSTREAM_INGEST_SINK_GROUP_ID": sink_group(run_id)}
                # The sink reports ready only after its first database write; alive is what start-up needs.
                services[name] = Service(name, ("services.ingest", "sink"), common | env, port, log_path,
                                         ready_path="/healthz")
            elif role == "anomaly":
                services[name] = anomaly_worker(name, common, port, log_path, work, f"bench-anomaly-{run_id}")
            else:
                raise ValueError(f"unknown service role {role!r}")
    return services


def anomaly_worker(name: str, common: dict[str, str], port: int, log_path: Path, work: Path, app_id: str,
                   **env: str) -> Service:
    """`python -m services.anomaly worker` as it is deployed, one member of the consumer group `app_id`, with its
    own web port and data directory. The lag gauge is refreshed every 0.5 s so the benchmark reads a fresh one."""
    data_dir = work / name.replace("#", "-")
    work.mkdir(parents=True, exist_ok=True)
    own = {"CITYSTREAM_ANOMALY_WEB_PORT": str(port), "CITYSTREAM_ANOMALY_APP_ID": app_id,
           "CITYSTREAM_ANOMALY_STORE": "memory://", "CITYSTREAM_ANOMALY_DATA_DIR": str(data_dir),
           "CITYSTREAM_ANOMALY_LAG_INTERVAL_S": "0.5", **env}
    return Service(name, ("services.anomaly", "worker"), common | own, port, log_path, cwd=work)


def sink_group(run_id: str) -> str:
    """The consumer group of a benchmark run's ingest-sink processes."""
    return f"bench-sink-{run_id}"


def anomaly_group(count: int, *, bootstrap: str, database_url: str, topic_prefix: str, run_id: str, logs_dir: Path,
                  app_id: str) -> dict[str, Service]:
    """`count` anomaly workers in one consumer group (not started yet)."""
    common = {"CITYSTREAM_KAFKA_BOOTSTRAP": bootstrap, "CITYSTREAM_DATABASE_URL": database_url,
              "CITYSTREAM_TOPIC_PREFIX": topic_prefix, "CITYSTREAM_LOG_LEVEL": "WARNING",
              "CITYSTREAM_INSTANCE_ID": run_id}
    work = logs_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    group = {}
    for index in range(count):
        name = instance_name("anomaly", index)
        group[name] = anomaly_worker(name, common, free_port(), logs_dir / f"{app_id}-{index + 1}.log", work / app_id,
                                     app_id)
    return group
