"""A second local runtime (Kafka and/or PostgreSQL) on free ports, for tests that stop, kill or break a server
without disturbing the shared one every other test uses."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from citystream.devenv import kafka, postgres, principals
from citystream.devenv.config import DevSettings
from tests.support.infra import Infrastructure
from tests.support.processes import free_port


def require_local_runtime(infrastructure: Infrastructure) -> None:
    if infrastructure.origin != "local runtime":
        pytest.skip(f"infrastructure comes from {infrastructure.origin}, not the local runtime")


def kafka_settings(settings: DevSettings) -> dict:
    """CommonSettings fields that reach this runtime's Kafka as its admin (it has passwords of its own)."""
    admin = principals.admin_access(settings)
    return {"kafka_bootstrap": admin.bootstrap, "kafka_security_protocol": admin.security_protocol,
            "kafka_sasl_mechanism": admin.sasl_mechanism, "kafka_username": admin.username,
            "kafka_password": admin.password}


@contextmanager
def isolated_runtime(prefix: str) -> Iterator[DevSettings]:
    """Settings for a runtime in a directory of its own; whatever the test started is stopped and removed after."""
    main = DevSettings()
    # Not under pytest's tmp_path (mode 700): the postgres system user must reach the data directory.
    main.state_dir.mkdir(parents=True, exist_ok=True)
    state_dir = Path(tempfile.mkdtemp(prefix=prefix, dir=main.state_dir))
    os.chmod(state_dir, 0o755)
    settings = DevSettings(
        cache_dir=main.cache_dir,  # reuse the downloaded jars and the TimescaleDB build
        state_dir=state_dir,
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        kafka_anonymous_port=free_port(),
        postgres_port=free_port(),
        kafka_heap_mb=384,
    )
    try:
        yield settings
    finally:
        postgres.stop(settings)
        kafka.stop(settings)
        shutil.rmtree(state_dir, ignore_errors=True)
