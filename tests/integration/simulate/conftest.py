"""The simulator, load-generator and eval tests run the platform's services as real processes."""

from __future__ import annotations

import pytest

from tests.support.platform import running_services


@pytest.fixture
def live_services(kafka, fresh_database_url, kafka_topics, tmp_path):
    """Every platform service on an empty database of its own."""
    with running_services(kafka, fresh_database_url, kafka_topics, tmp_path / "logs") as services:
        yield services
