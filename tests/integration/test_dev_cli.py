"""`citystream dev` against the running local runtime: starting twice is harmless; status reports versions."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.infra import Infrastructure


def citystream(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "citystream.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def local_runtime(infrastructure: Infrastructure) -> Infrastructure:
    if infrastructure.origin != "local runtime":
        pytest.skip(f"infrastructure comes from {infrastructure.origin}, not the local runtime")
    return infrastructure


def test_up_twice_is_idempotent_and_status_reports_both_components(local_runtime):
    second = citystream("dev", "up")
    assert second.returncode == 0, second.stderr
    assert "already running" in second.stderr
    status = citystream("dev", "status", "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["kafka"]["state"] == "up"
    assert report["kafka"]["version"].startswith("4.1")
    assert report["timescaledb"]["state"] == "up"
    assert report["timescaledb"]["version"]
    assert report["timescaledb"]["license"] in {"apache", "timescale"}


def test_migrate_and_topics_create_are_idempotent(local_runtime):
    for command in (("db", "migrate"), ("topics", "create")):
        result = citystream(*command)
        assert result.returncode == 0, result.stderr
    again = citystream("topics", "create")
    assert "all existed" in again.stderr
