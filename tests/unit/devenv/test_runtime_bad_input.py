"""The local runtime fails fast and clearly: port taken, no JDK, damaged data directory, unknown component."""

from __future__ import annotations

import socket

import pytest

from citystream.devenv import kafka, postgres
from citystream.devenv.config import DevSettings
from citystream.devenv.process import RuntimeProblem, read_pid


@pytest.fixture
def busy_port():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def isolated(tmp_path, **overrides) -> DevSettings:
    return DevSettings(cache_dir=tmp_path / "cache", state_dir=tmp_path / "state", **overrides)


def test_kafka_refuses_a_port_used_by_another_program(tmp_path, busy_port):
    settings = isolated(tmp_path, kafka_port=busy_port)
    with pytest.raises(RuntimeProblem, match=f"Port {busy_port} is in use"):
        kafka.start(settings)


def test_missing_jdk_is_named_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(RuntimeProblem, match="`java` not found.*openjdk"):
        kafka.ensure_jars(isolated(tmp_path))


def test_stale_pid_file_is_cleaned_up(tmp_path):
    pid_file = tmp_path / "kafka.pid"
    pid_file.write_text("999999999")
    assert read_pid(pid_file) is None
    assert not pid_file.exists()


def test_damaged_postgres_data_directory_is_reported_not_overwritten(tmp_path):
    settings = isolated(tmp_path)
    data = settings.state_dir / "postgres" / "data"
    data.mkdir(parents=True)
    (data / "postgresql.conf").write_text("# left behind\n")
    with pytest.raises(RuntimeProblem, match="damaged"):
        postgres._initdb(settings)
    assert (data / "postgresql.conf").read_text() == "# left behind\n"


def test_postgres_refuses_a_port_used_by_another_program(tmp_path, busy_port, monkeypatch):
    settings = isolated(tmp_path, postgres_port=busy_port)
    monkeypatch.setattr(postgres.timescaledb, "ensure", lambda settings, major: "installed")
    monkeypatch.setattr(postgres, "_initdb", lambda settings: None)
    with pytest.raises(RuntimeProblem, match=f"Port {busy_port} is in use"):
        postgres.start(settings)
