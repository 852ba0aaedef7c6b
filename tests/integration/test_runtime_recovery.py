"""The local runtime comes back after a crash: a second, isolated Kafka and PostgreSQL on free ports are
killed with SIGKILL (stale pid files, postmaster.pid left behind) and `start` brings them back up."""

from __future__ import annotations

import os
import signal

import pytest

from citystream.devenv import kafka, postgres
from citystream.devenv.process import pid_alive, wait_until
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
    postmaster_pid = int((settings.state_dir / "postgres" / "data" / "postmaster.pid").read_text().split()[0])
    os.kill(postmaster_pid, signal.SIGKILL)
    assert wait_until(lambda: not pid_alive(postmaster_pid), 10)
    assert postgres.status(settings)["state"] == "down"
    assert "started" in postgres.start(settings)
    status = postgres.status(settings)
    assert status["state"] == "up"
    assert status["license"] in {"apache", "timescale"}
