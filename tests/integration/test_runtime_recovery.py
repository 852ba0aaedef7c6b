"""The local runtime comes back after a crash: a second, isolated Kafka and PostgreSQL on free ports are
killed with SIGKILL (stale pid files, postmaster.pid left behind) and `start` brings them back up."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
from pathlib import Path

import pytest

from citystream.devenv import kafka, postgres
from citystream.devenv.config import DevSettings
from citystream.devenv.process import pid_alive, wait_until
from tests.support.infra import Infrastructure


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def isolated_runtime(infrastructure: Infrastructure):
    if infrastructure.origin != "local runtime":
        pytest.skip(f"infrastructure comes from {infrastructure.origin}, not the local runtime")
    main = DevSettings()
    # Not under pytest's tmp_path (mode 700): the postgres system user must be able to reach the data directory.
    main.state_dir.mkdir(parents=True, exist_ok=True)
    state_dir = Path(tempfile.mkdtemp(prefix="recovery-test-", dir=main.state_dir))
    os.chmod(state_dir, 0o755)
    settings = DevSettings(
        cache_dir=main.cache_dir,  # reuse the downloaded jars and the TimescaleDB build
        state_dir=state_dir,
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        postgres_port=free_port(),
        kafka_heap_mb=384,
    )
    yield settings
    postgres.stop(settings)
    kafka.stop(settings)
    shutil.rmtree(state_dir, ignore_errors=True)


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
    postmaster_pid = int((settings.state_dir / "postgres" / "data" / "postmaster.pid").read_text().split()[0])
    os.kill(postmaster_pid, signal.SIGKILL)
    assert wait_until(lambda: not pid_alive(postmaster_pid), 10)
    assert postgres.status(settings)["state"] == "down"
    assert "started" in postgres.start(settings)
    status = postgres.status(settings)
    assert status["state"] == "up"
    assert status["license"] in {"apache", "timescale"}
