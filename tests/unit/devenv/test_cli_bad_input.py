"""Bad input through the real command line: no JDK, no compiler, no network to a registry. Each must end in a clear
message and a non-zero exit within seconds — never a traceback, never a hang. Nothing here touches the shared
runtime: every command gets its own cache and state directories and free ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from citystream.devenv import kafka, timescaledb
from citystream.devenv.config import DevSettings
from citystream.devenv.process import RuntimeProblem

REPO = Path(__file__).resolve().parents[3]
FAST_S = 15.0  # "within seconds", with room for a loaded 2-core machine


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def private_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CITYSTREAM_")}
    env |= {
        "CITYSTREAM_DEV_CACHE_DIR": str(tmp_path / "cache"),
        "CITYSTREAM_DEV_STATE_DIR": str(tmp_path / "state"),
        "CITYSTREAM_DEV_KAFKA_PORT": str(free_port()),
        "CITYSTREAM_DEV_KAFKA_CONTROLLER_PORT": str(free_port()),
        "CITYSTREAM_DEV_KAFKA_ANONYMOUS_PORT": str(free_port()),
        "CITYSTREAM_DEV_POSTGRES_PORT": str(free_port()),
    }
    return env | extra


def bin_dir_with(tmp_path: Path, *tools: str, scripts: dict[str, str] | None = None) -> str:
    """A PATH entry holding only `tools` (linked from the real PATH) and stand-in `scripts`."""
    directory = tmp_path / "bin"
    directory.mkdir(exist_ok=True)
    for tool in tools:
        real = shutil.which(tool)
        assert real, f"{tool} must be installed for this test"
        (directory / tool).symlink_to(real)
    for name, body in (scripts or {}).items():
        (directory / name).write_text("#!/bin/sh\n" + body)
        (directory / name).chmod(0o755)
    return str(directory)


def citystream(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "citystream.cli", *args], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    return result, time.monotonic() - started


def assert_clear_failure(result: subprocess.CompletedProcess, seconds: float, *phrases: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output, output
    assert "error:" in output, output
    for phrase in phrases:
        assert phrase in " ".join(output.split()), output
    assert seconds < FAST_S, f"took {seconds:.1f} s:\n{output}"


def cached_jars(tmp_path: Path) -> None:
    libs = tmp_path / "cache" / f"kafka-{kafka.kafka_version()}" / "libs"
    libs.mkdir(parents=True)
    (libs / ".complete").write_text(kafka.kafka_version())


@pytest.mark.parametrize("command", [("dev", "up"), ("run", "--no-simulator")])
def test_no_jdk_with_cached_jars_is_named_with_the_fix(tmp_path, command):
    cached_jars(tmp_path)
    env = private_env(tmp_path, PATH=bin_dir_with(tmp_path))
    result, seconds = citystream(env, *command)
    assert_clear_failure(result, seconds, "`java` not found on PATH", "openjdk")


def test_no_network_to_maven_fails_fast_before_mvn_runs(tmp_path):
    closed = free_port()
    # A stand-in mvn that would hang: the reachability probe must fail first, in seconds.
    path = bin_dir_with(tmp_path, "java", scripts={"mvn": "sleep 600\n"}) + os.pathsep + os.environ["PATH"]
    env = private_env(tmp_path, PATH=path, CITYSTREAM_DEV_MAVEN_REPOSITORY=f"http://127.0.0.1:{closed}/maven2")
    result, seconds = citystream(env, "dev", "up")
    assert_clear_failure(result, seconds, "No network to the Maven repository", f"127.0.0.1:{closed}")


def test_no_compiler_names_the_missing_tools_and_packages(tmp_path):
    path = bin_dir_with(tmp_path, "apt-get", "dpkg-query", "dpkg-source", "make")
    env = private_env(tmp_path, PATH=path)
    result, seconds = citystream(env, "dev", "build-timescaledb")
    assert_clear_failure(result, seconds, "`cmake`", "`gcc`", "apt-get install cmake gcc")
    assert not (tmp_path / "cache" / "timescaledb-pg15" / "source").exists(), "nothing is downloaded first"


def test_no_network_to_the_debian_mirror_fails_fast(tmp_path):
    closed = free_port()
    env = private_env(tmp_path, CITYSTREAM_DEV_DEBIAN_MIRROR=f"http://127.0.0.1:{closed}/debian")
    result, seconds = citystream(env, "dev", "build-timescaledb")
    assert_clear_failure(result, seconds, "No network to the Debian mirror", f"127.0.0.1:{closed}")


@pytest.mark.skipif(os.geteuid() != 0, reason="apt-get update needs root for its private lists directory")
def test_apt_update_against_a_dead_mirror_is_an_error_not_a_warning(tmp_path):
    closed = free_port()
    (tmp_path / "lists" / "partial").mkdir(parents=True)
    (tmp_path / "cache" / "archives" / "partial").mkdir(parents=True)
    (tmp_path / "sources.list").write_text(timescaledb.SOURCES_LIST.format(mirror=f"http://127.0.0.1:{closed}/debian"))
    options = ["-o", f"Dir::Etc::SourceList={tmp_path / 'sources.list'}", "-o", "Dir::Etc::SourceParts=/dev/null",
               "-o", f"Dir::State::Lists={tmp_path / 'lists'}", "-o", f"Dir::Cache={tmp_path / 'cache'}"]
    started = time.monotonic()
    with pytest.raises(RuntimeProblem, match="Could not fetch Debian's source index"):
        timescaledb._apt_update(options, timeout=60)
    assert time.monotonic() - started < FAST_S


def test_a_source_download_without_a_dsc_is_a_clear_problem(tmp_path, monkeypatch):
    settings = DevSettings(cache_dir=tmp_path / "cache", state_dir=tmp_path / "state")
    monkeypatch.setattr(timescaledb, "_missing_packages", lambda major: [])
    monkeypatch.setattr(timescaledb, "_require_tools", lambda major: None)
    monkeypatch.setattr(timescaledb, "_apt_update", lambda options, timeout: None)
    monkeypatch.setattr(timescaledb, "_run", lambda *args, **kwargs: None)  # "downloads" nothing
    monkeypatch.setattr(kafka, "probe_registry", lambda url, what: None)
    with pytest.raises(RuntimeProblem, match="left no .dsc"):
        timescaledb.build(settings, 15)
