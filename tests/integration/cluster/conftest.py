"""One three-node cluster for the tests of this package (starting one takes ~15 s of the machine's two cores)."""

from __future__ import annotations

import pytest

from tests.integration.cluster.brokers import three_node_cluster


@pytest.fixture(scope="package")
def cluster():
    with three_node_cluster() as settings:
        yield settings
