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


def test_members_start_every_scalable_stage_that_many_times(recording):
    result = CliRunner().invoke(cli.app, ["run", "--no-simulator", "--members", "2"])
    assert result.exit_code == 0, result.output
    for name in run.SCALABLE:
        if any(c.name == name and c.available() for c in run.COMPONENTS):
            assert {name, f"{name}#2"} <= set(recording.spawned), recording.spawned
    assert "register#2" not in recording.spawned and "api#2" not in recording.spawned


def test_members_share_the_http_port_and_get_ports_and_state_of_their_own():
    by_name = {c.name: c for c in run.COMPONENTS}
    env = {"CITYSTREAM_ANOMALY_DATA_DIR": "/state/anomaly", "CITYSTREAM_INGEST_GATE_DATA_DIR": "/state/gate"}
    http = run.members_of(by_name["ingest-http"], 2, env)
    assert [(c.name, c.port_in(e), e["CITYSTREAM_INGEST_HTTP_REUSE_PORT"]) for c, e in http] == [
        ("ingest-http", 8082, "true"), ("ingest-http#2", 8082, "true")]
    # Several members hold one quota per sensor between them; a single process keeps its own exact buckets.
    assert [e["CITYSTREAM_INGEST_HTTP_SHARED_QUOTA"] for _, e in http] == ["true", "true"]
    assert "CITYSTREAM_INGEST_HTTP_SHARED_QUOTA" not in run.members_of(by_name["ingest-http"], 1, env)[0][1]
    gates = run.members_of(by_name["ingest-gate"], 3, env)
    assert [(c.name, c.role, c.port_in(e), e["CITYSTREAM_INGEST_GATE_DATA_DIR"]) for c, e in gates] == [
        ("ingest-gate", "ingest-gate", 8083, "/state/gate"), ("ingest-gate#2", "ingest-gate", 8183, "/state/gate-2"),
        ("ingest-gate#3", "ingest-gate", 8283, "/state/gate-3")]
    workers = run.members_of(by_name["anomaly"], 2, env)
    assert [e["CITYSTREAM_ANOMALY_DATA_DIR"] for _, e in workers] == ["/state/anomaly", "/state/anomaly-2"]
    assert run.members_of(by_name["ingest-sink"], 1, env) == [(by_name["ingest-sink"], env)]
    assert run.members_of(by_name["register"], 2, env) == [(by_name["register"], env)]
