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

from citystream.bench.usage import ProcessTree


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

    def sample(self) -> None:
        """CPU and peak resident memory of the process and any children it starts (citystream.bench.usage)."""
        if self.usage is not None:
            self.usage.sample()

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

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def platform_services(*, bootstrap: str, database_url: str, topic_prefix: str, run_id: str, logs_dir: Path,
                      roles: tuple[str, ...] = ("register", "ingest-http", "ingest-sink")) -> dict[str, Service]:
    """The requested services, each on a free port, all on one topic prefix and database; not started yet."""
    common = {"CITYSTREAM_KAFKA_BOOTSTRAP": bootstrap, "CITYSTREAM_DATABASE_URL": database_url,
              "CITYSTREAM_TOPIC_PREFIX": topic_prefix, "CITYSTREAM_LOG_LEVEL": "WARNING",
              "CITYSTREAM_INSTANCE_ID": run_id}
    work = logs_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    services: dict[str, Service] = {}
    for role in roles:
        port = free_port()
        if role == "register":
            env = {"CITYSTREAM_REGISTER_PORT": str(port), "CITYSTREAM_REGISTER_RELAY_POLL_S": "0.1"}
            services[role] = Service(role, ("services.register",), common | env, port, logs_dir / f"{role}.log")
        elif role == "ingest-http":
            env = {"CITYSTREAM_INGEST_HTTP_PORT": str(port)}
            services[role] = Service(role, ("services.ingest", "http"), common | env, port, logs_dir / f"{role}.log")
        elif role == "ingest-gate":
            env = {"CITYSTREAM_INGEST_GATE_PORT": str(port), "CITYSTREAM_INGEST_GATE_APP_ID": f"bench-gate-{run_id}",
                   "CITYSTREAM_INGEST_GATE_DATA_DIR": str(work / "gate")}
            services[role] = Service(role, ("services.ingest", "gate"), common | env, port, logs_dir / f"{role}.log")
        elif role == "ingest-sink":
            env = {"CITYSTREAM_INGEST_SINK_PORT": str(port), "CITYSTREAM_INGEST_SINK_GROUP_ID": f"bench-sink-{run_id}"}
            # The sink reports ready only after its first database write; alive is what start-up needs.
            services[role] = Service(role, ("services.ingest", "sink"), common | env, port, logs_dir / f"{role}.log",
                                     ready_path="/healthz")
        elif role == "anomaly":
            env = {"CITYSTREAM_ANOMALY_WEB_PORT": str(port), "CITYSTREAM_ANOMALY_APP_ID": f"bench-anomaly-{run_id}",
                   "CITYSTREAM_ANOMALY_STORE": "memory://"}
            services[role] = Service(role, ("services.anomaly", "worker"), common | env, port,
                                     logs_dir / f"{role}.log", cwd=work)
        else:
            raise ValueError(f"unknown service role {role!r}")
    return services
