"""Single-node Kafka in KRaft mode from Maven Central jars: fetch once into the cache, format once, run."""

from __future__ import annotations

import base64
import logging
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil

from citystream.devenv import principals
from citystream.devenv.config import REPO_ROOT, DevSettings
from citystream.devenv.process import (
    RuntimeProblem,
    pid_alive,
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
# Seconds a registry probe may take: an unreachable registry must fail in seconds, not after mvn's retries.
PROBE_TIMEOUT_S = 10.0
JAR_VERSION = re.compile(r"/kafka-server-(\d[^/]*?)\.jar$|/kafka_2\.1[0-9]-(\d[^/]*?)\.jar$")


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


def probe_registry(url: str, what: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Fail within seconds, with the fix, when `url` does not answer (urllib honours http(s)_proxy like apt)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout_s):
            return
    except urllib.error.HTTPError:
        return  # it answered: reachable (a 404 on a directory listing is still an answer)
    except (urllib.error.URLError, OSError, ValueError) as problem:
        reason = getattr(problem, "reason", problem)
        raise RuntimeProblem(
            f"No network to {what} ({url}): {reason}. Downloads are needed once and then cached; "
            "check the network or proxy (https_proxy), or point CITYSTREAM_DEV_MAVEN_REPOSITORY / "
            "CITYSTREAM_DEV_DEBIAN_MIRROR at a reachable mirror."
        ) from problem


def _mirror_settings(staging_root: Path, repository: str) -> list[str]:
    """mvn options that send every download to `repository` (a mirror of Central) when one is configured;
    none otherwise, so mvn uses the repositories and proxies of its own configuration."""
    if not repository:
        return []
    settings_xml = staging_root / "citystream-maven-settings.xml"
    settings_xml.parent.mkdir(parents=True, exist_ok=True)
    settings_xml.write_text(
        "<settings><mirrors><mirror><id>citystream</id><mirrorOf>*</mirrorOf>"
        f"<url>{repository}</url></mirror></mirrors></settings>\n"
    )
    return ["-s", str(settings_xml)]


def ensure_jars(settings: DevSettings) -> Path:
    """Resolve the broker jars into the cache once; later calls return at once."""
    paths = KafkaPaths.of(settings)
    marker = paths.libs / ".complete"
    if marker.exists():
        return paths.libs
    _require("java", "Install a JDK 17+: apt-get install openjdk-17-jre-headless")
    mvn = _require("mvn", "Install Maven: apt-get install maven")
    repository = settings.maven_repository.rstrip("/")
    if repository:  # a repository we were given is probed; mvn's own configuration is its business
        version = kafka_version()
        probe_registry(f"{repository}/org/apache/kafka/kafka_2.13/{version}/kafka_2.13-{version}.pom",
                       "the Maven repository")
    where = repository or "Maven's configured repositories"
    staging = paths.libs.with_name("libs.partial")
    shutil.rmtree(staging, ignore_errors=True)
    log.info("fetching Kafka %s jars from %s into %s", kafka_version(), where, paths.libs)
    command = [
        mvn, "-q", "-B", *_mirror_settings(paths.libs.parent, repository), "-f", str(POM),
        # Fail a dead connection in seconds instead of mvn's default minutes of retries.
        "-Daether.connector.connectTimeout=10000", "-Daether.connector.requestTimeout=60000",
        "-Dmaven.wagon.http.retryHandler.count=1",
        "dependency:copy-dependencies", f"-DoutputDirectory={staging}", "-DincludeScope=runtime",
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=settings.download_timeout_s)
    except subprocess.TimeoutExpired as slow:
        raise RuntimeProblem(
            f"Fetching the Kafka jars took over {settings.download_timeout_s:.0f} s; the network is too slow or "
            "stalled. Try again (finished downloads are kept in ~/.m2) or raise CITYSTREAM_DEV_DOWNLOAD_TIMEOUT_S."
        ) from slow
    if result.returncode != 0:
        raise RuntimeProblem(
            f"Could not fetch the Kafka jars from {where} (is the registry reachable? CITYSTREAM_DEV_MAVEN_REPOSITORY "
            "names a mirror).\n"
            + (result.stdout + result.stderr)[-2000:]
        )
    shutil.rmtree(paths.libs, ignore_errors=True)
    staging.rename(paths.libs)
    marker.write_text(kafka_version())
    return paths.libs


def _listener_properties(settings: DevSettings) -> list[str]:
    if settings.kafka_auth:
        return principals.broker_properties(settings)
    return [
        f"listeners=PLAINTEXT://127.0.0.1:{settings.kafka_port},CONTROLLER://127.0.0.1:{settings.kafka_controller_port}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{settings.kafka_port}",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    ]


def _write_config(settings: DevSettings, paths: KafkaPaths) -> None:
    paths.home.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Written by `citystream dev up`; edits are overwritten.",
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{settings.kafka_controller_port}",
        *_listener_properties(settings),
        "controller.listener.names=CONTROLLER",
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
        # Topics come from the catalogue (`citystream topics create`) and Faust's own admin requests; a
        # producer or consumer naming a misspelt topic gets an error instead of a new, unwatched topic.
        "auto.create.topics.enable=false",
        "",
    ]
    # Owner-only: with authentication on, the file holds the broker's and the admin's passwords.
    descriptor = os.open(paths.config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write("\n".join(lines))


def _cluster_id() -> str:
    """A cluster id as Kafka writes them: URL-safe base64 of a random UUID, unpadded, never starting with "-"
    (as Kafka's own `Uuid.randomUuid` ensures: the storage tool would read such an id as an option, 1 in 64)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _check_meta_properties(meta: Path) -> None:
    """A formatted data dir names its cluster and node in meta.properties; garbage there means damaged storage."""
    try:
        text = meta.read_text(errors="strict")
    except (OSError, UnicodeDecodeError) as problem:
        fields, error = {}, str(problem)
    else:
        fields = dict(
            line.split("=", 1) for line in text.splitlines() if "=" in line and not line.lstrip().startswith("#")
        )
        error = ""
    missing = [key for key in ("cluster.id", "node.id", "version") if not fields.get(key, "").strip()]
    if error or missing or fields.get("node.id", "").strip() != "1":
        detail = error or (f"missing {', '.join(missing)}" if missing else f"node.id={fields['node.id']} is not 1")
        raise RuntimeProblem(
            f"Kafka storage {meta.parent} is damaged: {meta.name} is unreadable ({detail}). "
            f"Its topics cannot be trusted. Move it away (mv {meta.parent} {meta.parent}.damaged) "
            "or delete all local data with `citystream dev reset`, then run `citystream dev up` again."
        )


def _format_storage(settings: DevSettings, paths: KafkaPaths) -> None:
    """Format once. A data dir without meta.properties is a half-finished format: wipe it and format again."""
    if (paths.data / "meta.properties").exists():
        _check_meta_properties(paths.data / "meta.properties")
        return
    if paths.data.exists():
        log.warning("Kafka storage %s was half formatted; formatting it again", paths.data)
        shutil.rmtree(paths.data)
    java = _require("java", "Install a JDK 17+: apt-get install openjdk-17-jre-headless")
    result = subprocess.run(
        [java, "-cp", f"{paths.libs}/*", "kafka.tools.StorageTool", "format",
         "-t", _cluster_id(), "-c", str(paths.config)],
        capture_output=True, text=True, timeout=120,
    )
    if result.returncode != 0:
        shutil.rmtree(paths.data, ignore_errors=True)
        raise RuntimeProblem("Formatting Kafka storage failed:\n" + (result.stdout + result.stderr)[-2000:])


def start(settings: DevSettings) -> str:
    """Start the broker unless it runs, then provision its principals. Returns a one-line outcome."""
    outcome = _start(settings)
    try:
        principals.provision(settings)
    except Exception as problem:  # noqa: BLE001 - any failure here means the same fix
        raise RuntimeProblem(
            f"Kafka runs on {settings.kafka_bootstrap} but its principals could not be provisioned ({problem!r}). "
            "A broker started before authentication was switched on still listens without it: "
            "`citystream dev down`, then `citystream dev up`. Log:\n" + _log_tail(settings)
        ) from problem
    return outcome


def _start(settings: DevSettings) -> str:
    paths = KafkaPaths.of(settings)
    pid = _our_broker_pid(paths)
    if pid:
        if port_open(settings.kafka_port):
            return f"Kafka already running on {settings.kafka_bootstrap}"
        # Alive but not listening: another `dev up` started it moments ago. Starting a second JVM would orphan it.
        log.info("Kafka (pid %s) is starting; waiting for port %s", pid, settings.kafka_port)
        if not wait_until(lambda: port_open(settings.kafka_port) or not pid_alive(pid), settings.start_timeout_s):
            raise RuntimeProblem(
                f"Kafka (pid {pid}) is running but has not opened port {settings.kafka_port} in "
                f"{settings.start_timeout_s:.0f} s. See `citystream dev logs kafka`; `citystream dev down` stops it. "
                f"Log:\n{_log_tail(settings)}"
            )
        if port_open(settings.kafka_port):
            return f"Kafka already running on {settings.kafka_bootstrap} (it was starting)"
        paths.pid_file.unlink(missing_ok=True)  # it died while starting: start it afresh below
    ports = (settings.kafka_port, settings.kafka_controller_port) + (
        (settings.kafka_anonymous_port,) if settings.kafka_auth else ())
    for port in ports:
        if port_open(port):
            raise RuntimeProblem(
                f"Port {port} is in use by another program. Stop it or choose other ports with "
                "CITYSTREAM_DEV_KAFKA_PORT / CITYSTREAM_DEV_KAFKA_CONTROLLER_PORT / CITYSTREAM_DEV_KAFKA_ANONYMOUS_PORT."
            )
    ensure_jars(settings)
    # Checked on every start, not only on the first fetch: the cached jars outlive an uninstalled JDK.
    java = _require("java", "Install a JDK 17+: apt-get install openjdk-17-jre-headless")
    _write_config(settings, paths)
    _format_storage(settings, paths)
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    heap = settings.kafka_heap_mb
    command = [
        java, f"-Xms{heap // 2}m", f"-Xmx{heap}m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true", f"-Dkafka.logs.dir={settings.logs_dir / 'kafka'}",
        f"-Dlog4j2.configurationFile={LOG4J2}",
        "-cp", f"{paths.libs}/*", "kafka.Kafka", str(paths.config),
    ]
    process = spawn_server(command, paths.log_file)
    paths.pid_file.write_text(str(process.pid))
    if not wait_until(lambda: port_open(settings.kafka_port) or process.poll() is not None, settings.start_timeout_s):
        stop_pid(process.pid)
        paths.pid_file.unlink(missing_ok=True)
        raise RuntimeProblem(f"Kafka did not open port {settings.kafka_port} in time. Log:\n{_log_tail(settings)}")
    if process.poll() is not None:
        paths.pid_file.unlink(missing_ok=True)
        raise RuntimeProblem(f"Kafka exited at start (code {process.returncode}). Log:\n{_log_tail(settings)}")
    return f"Kafka {running_version(process.pid) or kafka_version()} started on {settings.kafka_bootstrap}"


def _our_broker_pid(paths: KafkaPaths) -> int | None:
    """The pid in the pid file if it is this runtime's broker; a pid reused by another program counts as stale."""
    pid = read_pid(paths.pid_file)
    if pid is None:
        return None
    try:
        command_line = " ".join(psutil.Process(pid).cmdline())
    except psutil.AccessDenied:
        return pid
    except psutil.NoSuchProcess:
        command_line = ""
    if "kafka.Kafka" in command_line and str(paths.config) in command_line:
        return pid
    log.warning("pid file %s names pid %s, which is not this runtime's Kafka; ignoring it", paths.pid_file, pid)
    paths.pid_file.unlink(missing_ok=True)
    return None


def running_version(pid: int) -> str | None:
    """The version of the broker process `pid`, from the kafka-server jar it has open (None if it cannot be told)."""
    try:
        process = psutil.Process(pid)
        opened = [item.path for item in process.open_files()]
        if not any(JAR_VERSION.search(path) for path in opened):
            # Not opened yet (still starting): the jars its class path names.
            command = process.cmdline()
            classpath = command[command.index("-cp") + 1] if "-cp" in command else ""
            opened = [str(jar) for entry in classpath.split(":") if entry.endswith("/*")
                      for jar in Path(entry[:-2]).glob("*.jar")]
    except (psutil.Error, ValueError, IndexError):
        return None
    for path in sorted(opened):
        match = JAR_VERSION.search(path)
        if match:
            return match.group(1) or match.group(2)
    return None


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
        # What the running broker is, not what the pom would fetch; None when nothing runs or it cannot be told.
        "version": running_version(pid) if up else None,
        "port": settings.kafka_port,
        "pid": pid,
        "bootstrap": settings.kafka_bootstrap,
        "log": str(paths.log_file),
    }
