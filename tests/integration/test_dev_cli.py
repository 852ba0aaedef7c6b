"""`citystream dev` against the running local runtime: starting twice is harmless and quick; status reports what
the running servers say; migrate applies each migration once. Destructive checks use a private runtime."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import uuid

import asyncpg
import psutil
import pytest

from citystream.devenv import kafka, postgres
from services.common.migrate import discover
from tests.support.infra import Infrastructure
from tests.support.isolated_runtime import isolated_runtime


def citystream(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "citystream.cli", *args], capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.fixture
def local_runtime(infrastructure: Infrastructure) -> Infrastructure:
    if infrastructure.origin != "local runtime":
        pytest.skip(f"infrastructure comes from {infrastructure.origin}, not the local runtime")
    return infrastructure


async def _query(url: str, sql: str):
    connection = await asyncpg.connect(url, timeout=10)
    try:
        return await connection.fetchval(sql)
    finally:
        await connection.close()


def query(url: str, sql: str):
    return asyncio.run(_query(url, sql))


def test_up_twice_is_idempotent_quick_and_status_reports_both_components(local_runtime):
    started = time.monotonic()
    second = citystream("dev", "up")
    elapsed = time.monotonic() - started
    assert second.returncode == 0, second.stderr
    assert "already running" in second.stderr
    # A correctness bound, not a benchmark: with everything up there is nothing to wait for.
    assert elapsed < 20, f"a second `dev up` took {elapsed:.1f} s"
    status = citystream("dev", "status", "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["kafka"]["state"] == "up"
    assert report["kafka"]["version"].startswith("4.1")
    assert report["timescaledb"]["state"] == "up"
    assert report["timescaledb"]["version"]
    assert report["timescaledb"]["license"] in {"apache", "timescale"}


def test_status_versions_are_those_of_the_running_servers(local_runtime):
    report = json.loads(citystream("dev", "status", "--json").stdout)
    # Kafka: the kafka-server jar the broker process has open.
    broker = psutil.Process(report["kafka"]["pid"])
    jars = [name for name in (f.path.rsplit("/", 1)[1] for f in broker.open_files())
            if re.fullmatch(r"kafka-server-\d.*\.jar", name)]
    assert jars == [f"kafka-server-{report['kafka']['version']}.jar"], jars
    url = local_runtime.admin_database_url
    assert report["timescaledb"]["postgres_version"] == query(url, "SHOW server_version")
    assert report["timescaledb"]["version"] == query(
        url, "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    assert report["timescaledb"]["license"] == query(url, "SHOW timescaledb.license")


def test_status_of_a_server_without_the_extension_reports_no_timescaledb_version(local_runtime):
    with isolated_runtime("status-test-") as settings:
        assert "started" in postgres.start(settings)  # a new cluster: no CREATE EXTENSION ran in its database
        report = postgres.status(settings)
        assert report["state"] == "up" and report["postgres_version"].startswith("15.")
        assert report["version"] is None, "default_version of an uninstalled extension is not what runs"
        assert report["license"] is None, "no license can be read while TimescaleDB is not loaded"
        kafka_report = kafka.status(settings)
        assert kafka_report["state"] == "down" and kafka_report["version"] is None


def test_migrate_applies_each_migration_once_and_records_it(local_runtime):
    admin_url = local_runtime.admin_database_url
    name = f"cs_migrate_{uuid.uuid4().hex[:10]}"
    query(admin_url, f'CREATE DATABASE "{name}"')
    url = f"{admin_url.rpartition('/')[0]}/{name}"
    env = os.environ | {"CITYSTREAM_DATABASE_URL": url}
    try:
        versions = [migration.version for migration in discover()]
        first = citystream("db", "migrate", env=env)
        assert first.returncode == 0, first.stderr
        assert f"applied {len(versions)} migration(s)" in first.stderr, first.stderr
        second = citystream("db", "migrate", env=env)
        assert second.returncode == 0, second.stderr
        assert "applied 0 migration(s): none pending" in second.stderr, second.stderr
        recorded = query(url, "SELECT array_agg(version ORDER BY version) FROM schema_migrations")
        assert list(recorded) == versions
    finally:
        query(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_topics_create_is_idempotent(local_runtime):
    first = citystream("topics", "create")
    assert first.returncode == 0, first.stderr
    again = citystream("topics", "create")
    assert again.returncode == 0, again.stderr
    assert "all existed" in again.stderr
