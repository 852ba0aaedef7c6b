"""`make run` (= `citystream run`, no flags) starts the city simulator beside every service; `--no-simulator` not."""

from __future__ import annotations

import signal

import pytest
from typer.testing import CliRunner

from citystream import cli, run


class RecordingPlatform:
    """Stands in for the real one: records what would be spawned, starts nothing."""

    spawned: list[str] = []

    def __init__(self, settings) -> None:
        RecordingPlatform.spawned = []
        self.processes = {}

    def prepare_infrastructure(self) -> None: ...

    def service_env(self) -> dict:
        return {}

    def spawn(self, component, env) -> None:
        RecordingPlatform.spawned.append(component.name)

    def start_prometheus(self, ports) -> None: ...

    def start_grafana(self) -> None: ...

    def supervise(self) -> None: ...

    def stop(self) -> None: ...


@pytest.fixture
def recording(monkeypatch):
    monkeypatch.setattr(run, "Platform", RecordingPlatform)
    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    yield RecordingPlatform
    signal.signal(signal.SIGINT, previous[0])
    signal.signal(signal.SIGTERM, previous[1])


def test_make_run_starts_the_simulator_by_default(recording):
    result = CliRunner().invoke(cli.app, ["run"])
    assert result.exit_code == 0, result.output
    assert "simulator" in recording.spawned
    assert {c.name for c in run.COMPONENTS if c.available()} <= set(recording.spawned)
    assert "$(BIN)/citystream run\n" in (run.REPO_ROOT / "Makefile").read_text()


def test_no_simulator_leaves_it_out(recording):
    result = CliRunner().invoke(cli.app, ["run", "--no-simulator"])
    assert result.exit_code == 0, result.output
    assert "simulator" not in recording.spawned and recording.spawned
