"""One two-members-per-stage platform for the package's tests (starting seven processes per test would cost more
than the tests themselves); each test restarts what the previous one killed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from services.common.db import create_database, drop_database
from services.common.kafka import create_topics
from services.common.migrate import migrate
from tests.conftest import BROKERS_USED, HANDED_OUT_PREFIXES
from tests.integration.scaleout.harness import ScaleOutPlatform

FLEET_SENSORS = 200


async def _database(admin_url: str) -> str:
    url = await create_database(admin_url, "cs_test_")
    await migrate(url)
    return url


@pytest.fixture(scope="package")
def scaleout(infrastructure, tmp_path_factory) -> Iterator[ScaleOutPlatform]:
    kafka = infrastructure.kafka
    BROKERS_USED.add(kafka)
    database_url = asyncio.run(_database(infrastructure.admin_database_url))
    platform = ScaleOutPlatform.build(kafka, database_url, tmp_path_factory.mktemp("scaleout-logs"))
    # The catalogue's topics and the Faust gate app's own, deleted when the session ends.
    HANDED_OUT_PREFIXES.update({platform.prefix, f"bench-gate-{platform.run_id}"})
    try:
        asyncio.run(create_topics(kafka, prefix=platform.prefix))
        platform.start()
        asyncio.run(platform.register(FLEET_SENSORS))
        asyncio.run(platform.warm_up())
        yield platform
    finally:
        platform.stop()
        asyncio.run(drop_database(infrastructure.admin_database_url, database_url))


@pytest.fixture
def two_each(scaleout: ScaleOutPlatform) -> ScaleOutPlatform:
    """The platform with both members of every stage running."""
    scaleout.ensure_running()
    return scaleout
