"""Runtime states that must not be misread: a broker still starting, a pid reused by another program, damaged
Kafka storage, versions of servers that do not run, and the Makefile's bench target on moved ports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from citystream.devenv import kafka, postgres
from citystream.devenv.config import DevSettings
from citystream.devenv.process import RuntimeProblem, pid_alive, stop_pid

REPO = Path(__file__).resolve().parents[3]


def isolated(tmp_path, **overrides) -> DevSettings:
    from tests.unit.devenv.test_cli_bad_input import free_port

    return DevSettings(cache_dir=tmp_path / "cache", state_dir=tmp_path / "state", kafka_port=free_port(),
                       kafka_controller_port=free_port(), kafka_anonymous_port=free_port(), postgres_port=free_port(),
                       **overrides)


@pytest.fixture
def fake_broker(tmp_path):
    """A live process that looks like this runtime's broker (same command line) but never opens its port."""
    settings = isolated(tmp_path, start_timeout_s=2)
    paths = kafka.KafkaPaths.of(settings)
    paths.home.mkdir(parents=True)
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "kafka.Kafka", str(paths.config)],
                               start_new_session=True)
    paths.pid_file.write_text(str(process.pid))
    yield settings, process
    stop_pid(process.pid, timeout_s=2)
    process.wait()


def test_a_broker_still_starting_is_waited_for_not_started_twice(fake_broker, monkeypatch):
    settings, process = fake_broker
    monkeypatch.setattr(kafka, "spawn_server", lambda *a, **k: pytest.fail("a second broker was spawned"))
    monkeypatch.setattr(kafka, "ensure_jars", lambda s: pytest.fail("went on to start a second broker"))
    with pytest.raises(RuntimeProblem, match=rf"Kafka \(pid {process.pid}\) is running but has not opened port"):
        kafka.start(settings)
    assert pid_alive(process.pid), "the first broker must not be touched"
    assert kafka.KafkaPaths.of(settings).pid_file.read_text() == str(process.pid), "pid file kept"


def test_a_pid_file_naming_another_program_is_stale(tmp_path):
    settings = isolated(tmp_path)
    paths = kafka.KafkaPaths.of(settings)
    paths.home.mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        paths.pid_file.write_text(str(other.pid))
        assert kafka._our_broker_pid(paths) is None
        assert not paths.pid_file.exists()
        assert pid_alive(other.pid), "a stranger's process is never signalled"
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize("content", [b"\x00\xffgarbage\x13", b"version=1\nnode.id=1\n", b"cluster.id=x\nnode.id=7\n"
                                     b"version=1\n", b""])
def test_damaged_kafka_meta_properties_is_reported_with_the_fix(tmp_path, content):
    settings = isolated(tmp_path)
    paths = kafka.KafkaPaths.of(settings)
    paths.data.mkdir(parents=True)
    (paths.data / "meta.properties").write_bytes(content)
    with pytest.raises(RuntimeProblem, match="damaged.*citystream dev reset"):
        kafka._format_storage(settings, paths)
    assert (paths.data / "meta.properties").read_bytes() == content, "left for the user to inspect"


def test_a_well_formed_meta_properties_passes(tmp_path):
    settings = isolated(tmp_path)
    paths = kafka.KafkaPaths.of(settings)
    paths.data.mkdir(parents=True)
    (paths.data / "meta.properties").write_text(
        "#\n#Mon Nov 30 10:00:00 UTC 2026\nnode.id=1\ndirectory.id=abc\nversion=1\ncluster.id=Xyz\n")
    kafka._format_storage(settings, paths)  # no problem, no reformat


def test_status_of_servers_that_do_not_run_claims_no_version(tmp_path):
    settings = isolated(tmp_path)
    report = kafka.status(settings)
    assert report["state"] == "down"
    assert report["version"] is None, "a version read from pom.xml is not what runs"
    report = postgres.status(settings)
    assert report["state"] == "down"
    assert report["version"] is None and report["license"] is None and report["postgres_version"] is None


def test_running_version_of_a_process_without_kafka_jars_is_unknown():
    assert kafka.running_version(subprocess.os.getpid()) is None


def test_make_bench_points_the_benchmark_at_the_runtime_dev_env_describes():
    dry_run = subprocess.run(["make", "-n", "bench"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert dry_run.returncode == 0, dry_run.stderr
    bench_lines = [line for line in dry_run.stdout.splitlines() if "citystream bench" in line]
    assert bench_lines, dry_run.stdout
    assert all(line.startswith('eval "$(.venv/bin/citystream dev env)" && ') for line in bench_lines), bench_lines


def test_error_messages_keep_their_brackets(capsys):
    import typer

    from citystream import dev_cli

    with pytest.raises(typer.Exit) as exit_info:
        dev_cli._fail(RuntimeProblem("`apt-get` said: deb-src [signed-by=/usr/share/keyrings/x.gpg] [Errno 2]"))
    assert exit_info.value.exit_code == 1
    printed = " ".join(capsys.readouterr().err.split())
    assert "[signed-by=/usr/share/keyrings/x.gpg] [Errno 2]" in printed, printed


def test_a_cluster_id_never_starts_with_a_dash_the_storage_tool_would_read_as_an_option(monkeypatch):
    import uuid

    # The first UUID encodes to "-" + ... (0xf8 → "-" in URL-safe base64); the second does not.
    draws = iter([uuid.UUID(bytes=b"\xf8" + b"\x00" * 15), uuid.UUID(bytes=b"\x00" * 16)])
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: next(draws))
    cluster_id = kafka._cluster_id()
    assert cluster_id == "AAAAAAAAAAAAAAAAAAAAAA" and not cluster_id.startswith("-")
