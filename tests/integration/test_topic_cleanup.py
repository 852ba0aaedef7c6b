"""Deleting a run's topics by prefix (benchmark and test sessions clean up after themselves) on the real broker."""

from __future__ import annotations

import asyncio
import time
import uuid

from aiokafka.admin import AIOKafkaAdminClient

from services.common.kafka import create_topics, delete_topics_with_prefixes


async def _topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def test_only_the_topics_under_the_given_prefixes_are_deleted(kafka_bootstrap, topic_prefix):
    doomed, kept = topic_prefix, f"test.{uuid.uuid4().hex[:10]}."  # two sibling prefixes
    created = await create_topics(kafka_bootstrap, prefix=doomed) + await create_topics(kafka_bootstrap, prefix=kept)
    assert any(name.startswith(kept) for name in created) and any(name.startswith(doomed) for name in created)
    try:
        asked = await delete_topics_with_prefixes(kafka_bootstrap, [doomed])
        assert asked and all(name.startswith(doomed) for name in asked)
        deadline = time.monotonic() + 30
        while True:  # the broker deletes asynchronously
            left = await _topics(kafka_bootstrap)
            if not any(name.startswith(doomed) for name in left) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert not any(name.startswith(doomed) for name in left)
        assert {name for name in created if name.startswith(kept)} <= left
    finally:
        await delete_topics_with_prefixes(kafka_bootstrap, [kept])
    assert await delete_topics_with_prefixes(kafka_bootstrap, []) == []
