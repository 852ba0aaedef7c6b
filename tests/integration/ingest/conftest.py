"""Fixtures of the ingest tests that break a broker of their own."""

from __future__ import annotations

import pytest

from citystream.devenv import kafka
from tests.support.infra import Infrastructure
from tests.support.isolated_runtime import isolated_runtime, require_local_runtime

# "503 with Retry-After within about 3 s": the ack deadline is 2.5 s and the broker check answers within
# 1 + 1.5 s; 4 s leaves a loaded CI box some room, while a 503 that waited on a client or producer timeout
# (5-30 s) would fail.
ANSWER_BOUND_S = 4.0


@pytest.fixture
def isolated_kafka(infrastructure: Infrastructure, request):
    """A single-node Kafka on free ports in a directory of its own, for a test that stops it; removed afterwards."""
    require_local_runtime(infrastructure)
    with isolated_runtime(f"ingest-{request.node.name[:40]}-") as settings:
        kafka.start(settings)
        yield settings
