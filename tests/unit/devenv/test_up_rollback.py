"""`citystream dev up` stops what it started when a later component fails, and leaves alone what was running."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from citystream import dev_cli
from citystream.devenv.process import RuntimeProblem
from citystream.devenv.startup import StartFailed, Step, start_all


class FakeServer:
    """A component with the devenv module interface: status/start/stop against a shared event log."""

    def __init__(self, name: str, log: list[str], up: bool = False, fails: bool = False) -> None:
        self.name, self.log, self.up, self.fails = name, log, up, fails

    def status(self, settings) -> dict:
        return {"state": "up" if self.up else "down"}

    def start(self, settings) -> str:
        if self.up:
            return f"{self.name} already running"
        self.up = True  # a failing start may leave a half-started server behind: roll-back must stop it too
        if self.fails:
            raise RuntimeProblem(f"{self.name} did not come up (see its log)")
        self.log.append(f"start {self.name}")
        return f"{self.name} started"

    def stop(self, settings) -> str:
        self.log.append(f"stop {self.name}")
        self.up = False
        return f"{self.name} stopped"

    def step(self) -> Step:
        return Step(self.name, lambda: self.status(None)["state"] == "up", lambda: self.start(None),
                    lambda: self.stop(None))


def test_a_failing_component_stops_the_ones_started_before_it_in_reverse():
    log: list[str] = []
    servers = [FakeServer("a", log), FakeServer("b", log), FakeServer("c", log, fails=True)]
    with pytest.raises(StartFailed) as failed:
        start_all([s.step() for s in servers], (RuntimeProblem,), lambda line: None)
    assert log == ["start a", "start b", "stop c", "stop b", "stop a"]
    assert failed.value.stopped == ["c", "b", "a"] and failed.value.step == "c"
    assert not any(s.up for s in servers)


def test_what_was_already_running_is_left_running():
    log: list[str] = []
    servers = [FakeServer("kafka", log, up=True), FakeServer("timescaledb", log, fails=True)]
    with pytest.raises(StartFailed) as failed:
        start_all([s.step() for s in servers], (RuntimeProblem,), lambda line: None)
    assert log == ["stop timescaledb"] and failed.value.stopped == ["timescaledb"]
    assert servers[0].up


def test_dev_up_rolls_back_and_says_so(monkeypatch):
    log: list[str] = []
    monkeypatch.setattr(dev_cli, "COMPONENTS", {"kafka": FakeServer("kafka", log),
                                                "timescaledb": FakeServer("timescaledb", log, fails=True)})
    result = CliRunner().invoke(dev_cli.app, ["up"])
    assert result.exit_code == 1
    assert log == ["start kafka", "stop timescaledb", "stop kafka"]
    assert "timescaledb did not come up" in result.output and "stopped again: timescaledb, kafka" in result.output


def test_dev_up_succeeds_and_is_idempotent(monkeypatch):
    log: list[str] = []
    components = {"kafka": FakeServer("kafka", log), "timescaledb": FakeServer("timescaledb", log)}
    monkeypatch.setattr(dev_cli, "COMPONENTS", components)
    assert CliRunner().invoke(dev_cli.app, ["up"]).exit_code == 0
    second = CliRunner().invoke(dev_cli.app, ["up"])
    assert second.exit_code == 0 and "already running" in second.output
    assert log == ["start kafka", "start timescaledb"]
