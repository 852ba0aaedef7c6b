"""Single-node Kafka in KRaft mode from Maven Central jars: fetch once into the cache, format once, run."""

from __future__ import annotations

import base64
import logging
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from citystream.devenv.config import REPO_ROOT, DevSettings
from citystream.devenv.process import (
    RuntimeProblem,
    port_open,
    read_pid,
    spawn_server,
    stop_pid,
    tail,
    wait_until,
)

log = logging.getLogger(__name__)

POM = REPO_ROOT / "deploy" / "local" / "kafka" / "pom.xml"
LOG4J2 = REPO_ROOT / "deploy" / "local" / "kafka" / "log4j2.yaml"


def kafka_version() -> str:
    return re.search(r"<kafka.version>([^<]+)</kafka.version>", POM.read_text()).group(1)


@dataclass(frozen=True)
class KafkaPaths:
    libs: Path
    home: Path
    data: Path
    config: Path
    pid_file: Path
    log_file: Path

    @classmethod
    def of(cls, settings: DevSettings) -> KafkaPaths:
        home = settings.state_dir / "kafka"
        return cls(
            libs=settings.cache_dir / f"kafka-{kafka_version()}" / "libs",
            home=home,
            data=home / "data",
            config=home / "server.properties",
            pid_file=home / "kafka.pid",
            log_file=settings.logs_dir / "kafka.out",
        )


def _require(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise RuntimeProblem(f"`{tool}` not found on PATH. {hint}")
    return path


def ensure_jars(settings: DevSettings) -> Path:
    """Resolve the broker jars into the cache once; later calls return at once."""
    paths = KafkaPaths.of(settings)
    marker = paths.libs / ".complete"
    if marker.exists():
        return paths.libs
    _require("java", "Install a JDK 17+: apt-get install openjdk-17-jre-headless")
    mvn = _require("mvn", "Install Maven: apt-get install maven")
    staging = paths.libs.with_name("libs.partial")
    shutil.rmtree(staging, ignore_errors=True)
    log.info("fetching Kafka %s jars from Maven Central into %s", kafka_version(), paths.libs)
    result = subprocess.run(
        [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
         f"-DoutputDirectory={staging}", "-DincludeScope=runtime"],
        capture_output=True, text=True, timeout=900,
    )
    if result.returncode != 0:
        raise RuntimeProblem(
            "Could not fetch the Kafka jars from Maven Central (is the registry reachable?).\n"
            + (result.stdout + result.stderr)[-2000:]
        )
    shutil.rmtree(paths.libs, ignore_errors=True)
    staging.rename(paths.libs)
    marker.write_text(kafka_version())
    return paths.libs


def _write_config(settings: DevSettings, paths: KafkaPaths) -> None:
    paths.home.mkdir(parents=True, exist_ok=True)
    paths.config.write_text(
        "\n".join(
            [
                "# Written by `citystream dev up`; edits are overwritten.",
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{settings.kafka_controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{settings.kafka_port},"
                f"CONTROLLER://127.0.0.1:{settings.kafka_controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{settings.kafka_port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                f"log.dirs={paths.data}",
                "num.partitions=4",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=8",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "log.retention.hours=168",
                "log.segment.bytes=67108864",
                "auto.create.topics.enable=true",
                "",
            ]
        )
    )


def _cluster_id() -> str:
    """A cluster id as Kafka writes them: URL-safe base64 of a random UUID, unpadded."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def _format_storage(settings: DevSettings, paths: KafkaPaths) -> None:
    """Format once. A data dir without meta.properties is a half-finished format: wipe it and format again."""
    if (paths.data / "meta.properties").exists():
        return
    if paths.data.exists():
        log.warning("Kafka storage %s was half formatted; formatting it again", paths.data)
        shutil.rmtree(paths.data)
    result = subprocess.run(
        ["java", "-cp", f"{paths.libs}/*", "kafka.tools.StorageTool", "format",
         "-t", _cluster_id(), "-c", str(paths.config)],
        capture_output=True, text=True, timeout=120,
    )
    if result.returncode != 0:
        shutil.rmtree(paths.data, ignore_errors=True)
        raise RuntimeProblem("Formatting Kafka storage failed:\n" + (result.stdout + result.stderr)[-2000:])


def start(settings: DevSettings) -> str:
    """Start the broker unless it runs. Returns a one-line outcome."""
    paths = KafkaPaths.of(settings)
    if read_pid(paths.pid_file):
        if port_open(settings.kafka_port):
            return f"Kafka already running on {settings.kafka_bootstrap}"
    for port in (settings.kafka_port, settings.kafka_controller_port):
        if port_open(port) and not read_pid(paths.pid_file):
            raise RuntimeProblem(
                f"Port {port} is in use by another program. Stop it or choose other ports with "
                "CITYSTREAM_DEV_KAFKA_PORT / CITYSTREAM_DEV_KAFKA_CONTROLLER_PORT."
            )
    ensure_jars(settings)
    _write_config(settings, paths)
    _format_storage(settings, paths)
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    heap = settings.kafka_heap_mb
    command = [
        "java", f"-Xms{heap // 2}m", f"-Xmx{heap}m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true", f"-Dkafka.logs.dir={settings.logs_dir / 'kafka'}",
        f"-Dlog4j2.configurationFile={LOG4J2}",
        "-cp", f"{paths.libs}/*", "kafka.Kafka", str(paths.config),
    ]
    process = spawn_server(command, paths.log_file)
    paths.pid_file.write_text(str(process.pid))
    if not wait_until(lambda: port_open(settings.kafka_port) or process.poll() is not None, settings.start_timeout_s):
        stop_pid(process.pid)
        raise RuntimeProblem(f"Kafka did not open port {settings.kafka_port} in time. Log:\n{_log_tail(settings)}")
    if process.poll() is not None:
        paths.pid_file.unlink(missing_ok=True)
        raise RuntimeProblem(f"Kafka exited at start (code {process.returncode}). Log:\n{_log_tail(settings)}")
    return f"Kafka {kafka_version()} started on {settings.kafka_bootstrap}"


def _log_tail(settings: DevSettings) -> str:
    paths = KafkaPaths.of(settings)
    return tail(paths.log_file) + "\n" + tail(settings.logs_dir / "kafka" / "server.log")


def stop(settings: DevSettings) -> str:
    paths = KafkaPaths.of(settings)
    pid = read_pid(paths.pid_file)
    if not pid:
        return "Kafka not running"
    stop_pid(pid, timeout_s=30)
    paths.pid_file.unlink(missing_ok=True)
    return "Kafka stopped"


def status(settings: DevSettings) -> dict:
    paths = KafkaPaths.of(settings)
    pid = read_pid(paths.pid_file)
    up = pid is not None and port_open(settings.kafka_port)
    return {
        "component": "kafka",
        "state": "up" if up else "down",
        "version": kafka_version(),
        "port": settings.kafka_port,
        "pid": pid,
        "bootstrap": settings.kafka_bootstrap,
        "log": str(paths.log_file),
    }
