"""Kafka in KRaft mode from Maven Central jars, one node or a cluster of them on loopback: fetch the jars once into
the cache, format each node once, run each node as its own JVM."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil

from citystream.devenv import cluster, offsets, principals
from citystream.devenv.config import CLUSTER_RECORD, REPO_ROOT, DevSettings, recorded_brokers
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
    server_logs: Path

    @classmethod
    def of(cls, settings: DevSettings, node: int = 1) -> KafkaPaths:
        # Node 1 keeps the single-node layout: a runtime made before clusters existed is a cluster of one.
        root = settings.state_dir / "kafka"
        home = root if node == 1 else root / f"node-{node}"
        suffix = "" if node == 1 else f"-{node}"
        return cls(
            libs=settings.cache_dir / f"kafka-{kafka_version()}" / "libs",
            home=home,
            data=home / "data",
            config=home / "server.properties",
            pid_file=home / "kafka.pid",
            log_file=settings.logs_dir / f"kafka{suffix}.out",
            server_logs=settings.logs_dir / f"kafka{suffix}",
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


def _listener_properties(settings: DevSettings, node: int) -> list[str]:
    ports = settings.node_ports(node)
    if settings.kafka_auth:
        return principals.broker_properties(settings, ports)
    return [
        f"listeners=PLAINTEXT://127.0.0.1:{ports.client},CONTROLLER://127.0.0.1:{ports.controller}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{ports.client}",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name=PLAINTEXT",
    ]


def _write_config(settings: DevSettings, paths: KafkaPaths, node: int = 1) -> None:
    paths.home.mkdir(parents=True, exist_ok=True)
    lines = cluster.server_properties(settings, node, paths.data, _listener_properties(settings, node))
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


def _check_meta_properties(meta: Path, node: int = 1) -> None:
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
    if error or missing or fields.get("node.id", "").strip() != str(node):
        detail = error or (f"missing {', '.join(missing)}" if missing
                           else f"node.id={fields['node.id']} is not {node}")
        raise RuntimeProblem(
            f"Kafka storage {meta.parent} is damaged: {meta.name} is unreadable ({detail}). "
            f"Its topics cannot be trusted. Move it away (mv {meta.parent} {meta.parent}.damaged) "
            "or delete all local data with `citystream dev reset`, then run `citystream dev up` again."
        )


def _format_storage(settings: DevSettings, paths: KafkaPaths, node: int = 1) -> None:
    """Format once. A data dir without meta.properties is a half-finished format: wipe it and format again."""
    if (paths.data / "meta.properties").exists():
        _check_meta_properties(paths.data / "meta.properties", node)
        return
    if paths.data.exists():
        log.warning("Kafka storage %s was half formatted; formatting it again", paths.data)
        shutil.rmtree(paths.data)
    java = _require("java", "Install a JDK 17+: apt-get install openjdk-17-jre-headless")
    result = subprocess.run(
        [java, "-cp", f"{paths.libs}/*", "kafka.tools.StorageTool", "format",
         "-t", _runtime_cluster_id(settings), "-c", str(paths.config)],
        capture_output=True, text=True, timeout=120,
    )
    if result.returncode != 0:
        shutil.rmtree(paths.data, ignore_errors=True)
        raise RuntimeProblem("Formatting Kafka storage failed:\n" + (result.stdout + result.stderr)[-2000:])


def _runtime_cluster_id(settings: DevSettings) -> str:
    """The id every node of this runtime is formatted with: the recorded one, else node 1's (a runtime formatted
    before the record existed), else a new one; recorded with the broker count so a later `dev up` finds both."""
    record = settings.state_dir / CLUSTER_RECORD
    try:
        cluster_id = json.loads(record.read_text())["cluster_id"]
    except (OSError, ValueError, KeyError, TypeError):
        meta = KafkaPaths.of(settings, 1).data / "meta.properties"
        found = re.search(r"^cluster\.id=(\S+)", meta.read_text(), re.MULTILINE) if meta.exists() else None
        cluster_id = found.group(1) if found else _cluster_id()
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"cluster_id": cluster_id, "brokers": settings.kafka_brokers}) + "\n")
    return cluster_id


def _check_size(settings: DevSettings) -> None:
    """A KRaft quorum is fixed when its storage is formatted: a runtime formatted for N nodes runs N nodes."""
    recorded = recorded_brokers(settings.state_dir)
    if recorded is None and (KafkaPaths.of(settings, 1).data / "meta.properties").exists():
        recorded = 1  # formatted before clusters existed: a single node
    if recorded is not None and recorded != settings.kafka_brokers:
        raise RuntimeProblem(
            f"The Kafka storage in {settings.state_dir / 'kafka'} was formatted for {recorded} broker(s), not "
            f"{settings.kafka_brokers}. Start it as it is (without --brokers / CITYSTREAM_DEV_KAFKA_BROKERS), "
            "use another CITYSTREAM_DEV_STATE_DIR, or delete its data with `citystream dev reset`.")


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
    try:
        offsets.replicate(settings)
    except Exception as problem:  # noqa: BLE001 - the cluster runs; what failed is named
        raise RuntimeProblem(
            f"Kafka runs on {settings.kafka_bootstrap} but its consumer-offsets topic could not be given "
            f"min.insync.replicas ({problem!r}). Run `citystream dev up` again. Log:\n" + _log_tail(settings)
        ) from problem
    return outcome


def _start(settings: DevSettings) -> str:
    _check_size(settings)
    starting: list[int] = []  # nodes that were starting when we came: waited for, not started again
    to_start = []
    for node in settings.kafka_nodes:
        state = _running_state(settings, node)
        if state == "starting":
            starting.append(node)
        elif state == "down":
            to_start.append(node)
    if not to_start:
        return f"Kafka already running on {settings.kafka_bootstrap}" + (" (it was starting)" if starting else "")
    for node in to_start:
        for port in _node_ports(settings, node):
            if port_open(port):
                raise RuntimeProblem(
                    f"Port {port} is in use by another program. Stop it or choose other ports with "
                    "CITYSTREAM_DEV_KAFKA_PORT / CITYSTREAM_DEV_KAFKA_CONTROLLER_PORT / "
                    "CITYSTREAM_DEV_KAFKA_ANONYMOUS_PORT" + (
                        " (node n uses each + (n - 1) × CITYSTREAM_DEV_KAFKA_NODE_PORT_STEP)."
                        if settings.kafka_brokers > 1 else ".")
                )
    ensure_jars(settings)
    # Checked on every start, not only on the first fetch: the cached jars outlive an uninstalled JDK.
    java = _require("java", "Install a JDK 17+: apt-get install openjdk-17-jre-headless")
    for node in to_start:
        paths = KafkaPaths.of(settings, node)
        _write_config(settings, paths, node)
        _format_storage(settings, paths, node)
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    # All at once: a node of a cluster opens its client port only once a quorum of controllers elected a leader.
    processes = {node: _spawn(settings, java, node) for node in to_start}

    def settled() -> bool:
        return all(port_open(settings.node_ports(node).client) or process.poll() is not None
                   for node, process in processes.items())

    wait_until(settled, settings.start_timeout_s)
    failed = {node: process for node, process in processes.items()
              if process.poll() is not None or not port_open(settings.node_ports(node).client)}
    if failed:
        for node, process in processes.items():  # a half-started cluster is not left behind
            stop_pid(process.pid)
            KafkaPaths.of(settings, node).pid_file.unlink(missing_ok=True)
        node, process = next(iter(failed.items()))
        what = (f"exited at start (code {process.returncode})" if process.poll() is not None
                else f"did not open port {settings.node_ports(node).client} in time")
        label = "Kafka" if settings.kafka_brokers == 1 else f"Kafka node {node}"
        raise RuntimeProblem(f"{label} {what}. Log:\n{_log_tail(settings, node)}")
    version = running_version(next(iter(processes.values())).pid) or kafka_version()
    if settings.kafka_brokers == 1:
        return f"Kafka {version} started on {settings.kafka_bootstrap}"
    return (f"Kafka {version} started: node(s) {', '.join(map(str, to_start))} of {settings.kafka_brokers}; "
            f"bootstrap {settings.kafka_bootstrap}")


def _node_ports(settings: DevSettings, node: int) -> tuple[int, ...]:
    ports = settings.node_ports(node)
    return (ports.client, ports.controller) + ((ports.anonymous,) if settings.kafka_auth else ())


def _running_state(settings: DevSettings, node: int) -> str:
    """"up", "starting" (alive, port opened while we waited) or "down" (no process of ours: start it)."""
    paths = KafkaPaths.of(settings, node)
    port = settings.node_ports(node).client
    pid = _our_broker_pid(paths)
    if not pid:
        return "down"
    if port_open(port):
        return "up"
    # Alive but not listening: another `dev up` started it moments ago. Starting a second JVM would orphan it.
    # (A node of a cluster whose quorum is lost waits here too: it opens its port once a quorum is back.)
    log.info("Kafka (pid %s) is starting; waiting for port %s", pid, port)
    if not wait_until(lambda: port_open(port) or not pid_alive(pid), settings.start_timeout_s):
        raise RuntimeProblem(
            f"Kafka (pid {pid}) is running but has not opened port {port} in "
            f"{settings.start_timeout_s:.0f} s. See `citystream dev logs kafka`; `citystream dev down` stops it. "
            f"Log:\n{_log_tail(settings, node)}"
        )
    if port_open(port):
        return "starting"
    paths.pid_file.unlink(missing_ok=True)  # it died while starting: start it afresh
    return "down"


def _spawn(settings: DevSettings, java: str, node: int):
    paths = KafkaPaths.of(settings, node)
    heap = settings.kafka_heap_mb
    command = [
        java, f"-Xms{heap // 2}m", f"-Xmx{heap}m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true", f"-Dkafka.logs.dir={paths.server_logs}",
        f"-Dlog4j2.configurationFile={LOG4J2}",
        "-cp", f"{paths.libs}/*", "kafka.Kafka", str(paths.config),
    ]
    process = spawn_server(command, paths.log_file)
    paths.pid_file.write_text(str(process.pid))
    return process


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


def _log_tail(settings: DevSettings, node: int = 1) -> str:
    paths = KafkaPaths.of(settings, node)
    return tail(paths.log_file) + "\n" + tail(paths.server_logs / "server.log")


def stop(settings: DevSettings) -> str:
    running = {node: pid for node in settings.kafka_nodes
               if (pid := read_pid(KafkaPaths.of(settings, node).pid_file))}
    # All nodes at once: stopped one after another, the last one would wait for a controller quorum that left
    # before it (its controlled shutdown never completes), until stop_pid's SIGKILL 30 s later.
    with ThreadPoolExecutor(max_workers=len(running) or 1) as pool:
        list(pool.map(lambda pid: stop_pid(pid, timeout_s=30), running.values()))
    for node in running:
        KafkaPaths.of(settings, node).pid_file.unlink(missing_ok=True)
    stopped = sorted(running)
    if not stopped:
        return "Kafka not running"
    if settings.kafka_brokers == 1:
        return "Kafka stopped"
    return f"Kafka stopped (node(s) {', '.join(map(str, sorted(stopped)))} of {settings.kafka_brokers})"


def node_status(settings: DevSettings, node: int) -> dict:
    """One node: up when its process runs and its client port answers."""
    paths = KafkaPaths.of(settings, node)
    pid = read_pid(paths.pid_file)
    ports = settings.node_ports(node)
    up = pid is not None and port_open(ports.client)
    return {"node": node, "state": "up" if up else "down", "pid": pid, "port": ports.client,
            "controller_port": ports.controller, "log": str(paths.log_file)}


def status(settings: DevSettings) -> dict:
    """The runtime's Kafka: "up" when every node is, "degraded" when some are; `brokers` lists each node."""
    brokers = [node_status(settings, node) for node in settings.kafka_nodes]
    states = {broker["state"] for broker in brokers}
    first_up = next((broker["pid"] for broker in brokers if broker["state"] == "up"), None)
    return {
        "component": "kafka",
        "state": "up" if states == {"up"} else "degraded" if "up" in states else "down",
        # What the running broker is, not what the pom would fetch; None when nothing runs or it cannot be told.
        "version": running_version(first_up) if first_up else None,
        "port": settings.kafka_port,
        "pid": brokers[0]["pid"],
        "bootstrap": settings.kafka_bootstrap,
        "log": brokers[0]["log"],
        "brokers": brokers,
    }
