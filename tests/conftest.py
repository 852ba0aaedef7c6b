"""Shared fixtures: the real Kafka and TimescaleDB (see tests/support/infra.py), isolated per test.

- `infrastructure` (session): where Kafka and the database are.
- `database_url` (session): a fresh database for this run, migrated; dropped afterwards.
- `fresh_database_url`: a new empty migrated database for one test (slower; only when a test needs empty tables).
- `topic_prefix`: a unique prefix per test; `kafka_topics` creates the whole catalogue under it.
- `anomaly_app_id`: a unique Faust app id per test (its changelog topics start with it).
Every topic under a prefix or app id handed out here is deleted when the session ends: thousands of leftover
test partitions made the local broker take minutes to start.
- `settings`: CommonSettings pointing at all of the above.
- `kafka`: how tests reach the broker, as its admin (super user). Integration and end-to-end tests run with it in
  CITYSTREAM_KAFKA_BOOTSTRAP, ..._SECURITY_PROTOCOL, ..._USERNAME, ..., so settings and services they start use it
  unless the test gives a service another broker or its own principal.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common.db import create_database, drop_database
from services.common.kafka import create_topics, delete_topics_with_prefixes
from services.common.migrate import migrate
from services.common.settings import CommonSettings, KafkaAccess
from tests.support.infra import Infrastructure, resolve

TESTS_DIR = Path(__file__).resolve().parent
# Topic-name prefixes handed out this session, and the brokers tests talked to: cleaned up in pytest_sessionfinish.
HANDED_OUT_PREFIXES: set[str] = set()
BROKERS_USED: set[KafkaAccess] = set()


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(str(item.fspath))
        tier = path.relative_to(TESTS_DIR).parts[0] if TESTS_DIR in path.parents else ""
        if tier == "integration":
            item.add_marker(pytest.mark.integration)
        elif tier == "e2e":
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def _kafka_environment(request, monkeypatch):
    """Integration and end-to-end tests: a command or service they run without naming a broker reaches this one, as
    its admin (the broker and its admin's credentials go together; tests that need another say so)."""
    if request.node.get_closest_marker("integration") or request.node.get_closest_marker("e2e"):
        for name, value in request.getfixturevalue("infrastructure").kafka.environment().items():
            monkeypatch.setenv(name, value)


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[Infrastructure]:
    infra, containers = resolve()
    yield infra
    for container in containers:
        container.stop()


async def _create_database(admin_url: str) -> str:
    url = await create_database(admin_url, "cs_test_")
    await migrate(url)
    return url


@pytest.fixture(scope="session")
def database_url(infrastructure: Infrastructure) -> Iterator[str]:
    url = asyncio.run(_create_database(infrastructure.admin_database_url))
    yield url
    asyncio.run(drop_database(infrastructure.admin_database_url, url))


@pytest.fixture
def fresh_database_url(infrastructure: Infrastructure) -> Iterator[str]:
    url = asyncio.run(_create_database(infrastructure.admin_database_url))
    yield url
    asyncio.run(drop_database(infrastructure.admin_database_url, url))


@pytest.hookimpl(wrapper=True)
def pytest_timeout_set_timer(item, settings):
    """On a timeout, print where every asyncio task of the test's loop is waiting before pytest-timeout fails it.

    Why: its own dump shows only threads, and for an async test that is the event loop idling in select(); the
    task stacks say which await never returned (a teardown hung once in the database pool's shutdown)."""
    handled = yield
    fail = signal.getsignal(signal.SIGALRM)
    if settings.method == "signal" and callable(fail):
        def dump_tasks_then_fail(signum, frame):
            loop = asyncio._get_running_loop()
            if loop is not None:
                print(f"\n--- asyncio tasks at the timeout of {item.nodeid} ---", file=sys.stderr)
                for task in asyncio.all_tasks(loop):
                    task.print_stack(file=sys.stderr)
            fail(signum, frame)
        signal.signal(signal.SIGALRM, dump_tasks_then_fail)
    return handled


def pytest_sessionfinish(session, exitstatus):
    # Handlers a test installed may write to streams pytest has closed by now; the admin's PLAIN login warns on
    # every connection ("in the clear", on loopback), which would print a logging error per connection.
    logging.getLogger("aiokafka.conn").setLevel(logging.ERROR)
    for kafka in BROKERS_USED:
        try:
            asyncio.run(delete_topics_with_prefixes(kafka, HANDED_OUT_PREFIXES))
        except Exception as problem:  # noqa: BLE001 - leftover topics cost disk and start-up time, not results
            print(f"\ncould not delete this session's test topics on {kafka.bootstrap}: {problem!r}")


@pytest.fixture
def kafka(infrastructure: Infrastructure) -> KafkaAccess:
    """The broker, as its admin."""
    BROKERS_USED.add(infrastructure.kafka)
    return infrastructure.kafka


@pytest.fixture
def kafka_bootstrap(kafka: KafkaAccess) -> str:
    return kafka.bootstrap


@pytest.fixture
def topic_prefix() -> str:
    """Unique per test, so tests never read each other's records."""
    prefix = f"test.{uuid.uuid4().hex[:10]}."
    HANDED_OUT_PREFIXES.add(prefix)
    return prefix


@pytest.fixture
def anomaly_app_id() -> str:
    """Unique per test, so two tests' anomaly workers never share a consumer group or changelog."""
    app_id = f"test-anomaly-{uuid.uuid4().hex[:8]}"
    HANDED_OUT_PREFIXES.add(app_id)
    return app_id


@pytest.fixture
def kafka_topics(kafka: KafkaAccess, topic_prefix: str) -> str:
    """Creates every catalogue topic under this test's prefix; returns the prefix."""
    asyncio.run(create_topics(kafka, prefix=topic_prefix))
    return topic_prefix


@pytest.fixture
def settings(kafka_bootstrap: str, database_url: str, kafka_topics: str) -> CommonSettings:
    return CommonSettings(
        kafka_bootstrap=kafka_bootstrap, database_url=database_url, topic_prefix=kafka_topics,
        instance_id=f"test-{uuid.uuid4().hex[:6]}",
    )
