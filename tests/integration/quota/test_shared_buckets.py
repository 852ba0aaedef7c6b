"""The shared per-sensor buckets in PostgreSQL (services/ingest/quota_store.py), as the role ingest-http runs as:
a lease takes what the bucket holds and no more, refills at the rate on the database's clock, and one statement
serves many sensors."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from services.common.errors import DependencyUnavailable
from services.common.roles import APP_ROLE, with_role
from services.ingest.quota_store import SharedBuckets


async def test_leases_never_grant_more_than_one_bucket(fresh_database_url):
    buckets = SharedBuckets(with_role(fresh_database_url, APP_ROLE), timeout_s=5)
    try:
        # A new sensor starts from a full minute (60); a second sensor in the same statement has its own bucket.
        first = await buckets.lease({"quota-a": (60, 50), "quota-b": (6, 1)})
        assert first["quota-a"][0] == 50 and first["quota-a"][1] == pytest.approx(10, abs=0.01)
        assert first["quota-b"] == (1, 5.0)
        # Concurrent leases (as from several processes) share what is left: 10 tokens and what refilled meanwhile.
        granted = await asyncio.gather(*(buckets.lease({"quota-a": (60, 6)}) for _ in range(4)))
        total = sum(g["quota-a"][0] for g in granted)
        assert 10 <= total <= 11, granted  # 10 left, plus at most one refilled during the few ms the calls took
        empty = await buckets.lease({"quota-a": (60, 6)})
        assert empty["quota-a"][0] == 0 and empty["quota-a"][1] < 1.0
        await asyncio.sleep(2.1)  # 60/min refills one token a second on the database's clock
        refilled = await buckets.lease({"quota-a": (60, 6)})
        assert 2 <= refilled["quota-a"][0] <= 3, refilled
    finally:
        await buckets.close()
    connection = await asyncpg.connect(fresh_database_url)
    try:
        persistence = await connection.fetchval(
            "SELECT relpersistence::text FROM pg_class WHERE relname = 'ingest_rate_buckets'")
        assert persistence == "u"  # unlogged: no WAL for a table rewritten at request rate
    finally:
        await connection.close()


async def test_unreachable_database_is_dependency_unavailable():
    buckets = SharedBuckets("postgresql://citystream_app:citystream_app@127.0.0.1:1/none", timeout_s=1)
    try:
        with pytest.raises(DependencyUnavailable):
            await buckets.lease({"quota-a": (60, 6)})
    finally:
        await buckets.close()
