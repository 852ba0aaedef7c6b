"""The local runtime comes back after a crash: a second, isolated Kafka and PostgreSQL on free ports are
killed with SIGKILL (stale pid files, postmaster.pid left behind) and `start` brings them back up; a second start
while the broker is still starting waits for it; damaged storage is named with the fix."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from citystream.devenv import kafka, postgres
from citystream.devenv.process import pid_alive, port_open, wait_until
from tests.support.infra import Infrastructure
from tests.support.isolated_runtime import isolated_runtime as isolated_runtime_of
from tests.support.isolated_runtime import require_local_runtime


@pytest.fixture
def isolated_runtime(infrastructure: Infrastructure):
    require_local_runtime(infrastructure)
    with isolated_runtime_of("recovery-test-") as settings:
        yield settings


def test_kafka_restarts_after_sigkill(isolated_runtime):
    settings = isolated_runtime
    assert "started" in kafka.start(settings)
    pid = kafka.status(settings)["pid"]
    os.killpg(pid, signal.SIGKILL)
    assert wait_until(lambda: not pid_alive(pid), 10)
    assert kafka.status(settings)["state"] == "down"
    assert "started" in kafka.start(settings)
    assert kafka.status(settings)["state"] == "up"


def test_kafka_reformats_half_formatted_storage(isolated_runtime):
    settings = isolated_runtime
    data = kafka.KafkaPaths.of(settings).data
    data.mkdir(parents=True)
    (data / "bootstrap.checkpoint").write_bytes(b"\x00partial")
    assert "started" in kafka.start(settings)
    assert (data / "meta.properties").exists()


def test_postgres_restarts_after_sigkill_of_the_postmaster(isolated_runtime):
    settings = isolated_runtime
    assert "started" in postgres.start(settings)
    # What `citystream db migrate` does first; status reads version and license from the extension it loads.
    created = postgres._psql(settings, "CREATE EXTENSION IF NOT EXISTS timescaledb", database=settings.postgres_db)
    assert created.returncode == 0, created.stderr
    postmaster_pid = int((settings.state_dir / "postgres" / "data" / "postmaster.pid").read_text().split()[0])
    os.kill(postmaster_pid, signal.SIGKILL)
    assert wait_until(lambda: not pid_alive(postmaster_pid), 10)
    assert postgres.status(settings)["state"] == "down"
    assert "started" in postgres.start(settings)
    status = postgres.status(settings)
    assert status["state"] == "up"
    assert status["license"] in {"apache", "timescale"}
    assert status["version"], status


def test_starting_while_the_broker_is_still_starting_waits_for_it_instead_of_spawning_a_second(isolated_runtime):
    settings = isolated_runtime
    paths = kafka.KafkaPaths.of(settings)
    first = {}
    starter = threading.Thread(target=lambda: first.setdefault("outcome", kafka.start(settings)))
    starter.start()
    assert wait_until(paths.pid_file.exists, 60), "the first start never spawned the broker"
    first_pid = int(paths.pid_file.read_text())
    assert not port_open(settings.kafka_port), "too late: the broker was already listening"
    outcome = kafka.start(settings)  # a second `dev up` while the JVM is alive but its port still closed
    starter.join(timeout=90)
    assert "already running" in outcome and "started" in first["outcome"]
    assert int(paths.pid_file.read_text()) == first_pid, "the pid file must keep naming the first broker"
    brokers = [p for p in psutil.process_iter(["cmdline"])
               if "kafka.Kafka" in (p.info["cmdline"] or ()) and str(paths.config) in (p.info["cmdline"] or ())]
    assert [p.pid for p in brokers] == [first_pid]


def test_damaged_kafka_storage_is_reported_with_the_fix_and_leaves_no_broker(isolated_runtime):
    settings = isolated_runtime
    assert "started" in kafka.start(settings)
    assert kafka.stop(settings) == "Kafka stopped"
    meta = kafka.KafkaPaths.of(settings).data / "meta.properties"
    meta.write_bytes(b"\x00\x17garbage after a crash\xff")
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "citystream.cli", "dev", "up"], capture_output=True, text=True,
                            timeout=120, env=dev_env(settings))
    message = " ".join(result.stderr.split())
    assert result.returncode == 1, result.stderr
    assert "is damaged" in message and "citystream dev reset" in message and str(meta.parent) in message, message
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 20
    assert kafka.status(settings)["state"] == "down" and kafka.status(settings)["pid"] is None
    assert meta.read_bytes().startswith(b"\x00\x17garbage"), "the damaged storage is left for inspection"


def dev_env(settings) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CITYSTREAM_")}
    return env | {
        "CITYSTREAM_DEV_CACHE_DIR": str(settings.cache_dir), "CITYSTREAM_DEV_STATE_DIR": str(settings.state_dir),
        "CITYSTREAM_DEV_KAFKA_PORT": str(settings.kafka_port),
        "CITYSTREAM_DEV_KAFKA_CONTROLLER_PORT": str(settings.kafka_controller_port),
        "CITYSTREAM_DEV_KAFKA_ANONYMOUS_PORT": str(settings.kafka_anonymous_port),
        "CITYSTREAM_DEV_POSTGRES_PORT": str(settings.postgres_port),
        "CITYSTREAM_DEV_KAFKA_HEAP_MB": str(settings.kafka_heap_mb),
    }
