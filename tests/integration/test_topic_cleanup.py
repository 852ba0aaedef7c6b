"""Deleting a run's topics by prefix (benchmark and test sessions clean up after themselves) on the real broker."""

from __future__ import annotations

import asyncio
import time
import uuid

from services.common.kafka import create_topics, delete_topics_with_prefixes, make_admin


async def _topics(bootstrap: str) -> set[str]:
    admin = make_admin(bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def test_only_the_topics_under_the_given_prefixes_are_deleted(kafka, topic_prefix):
    doomed, kept = topic_prefix, f"test.{uuid.uuid4().hex[:10]}."  # two sibling prefixes
    created = [name for prefix in (doomed, kept) for name in await create_topics(kafka, prefix=prefix)]
    assert any(name.startswith(kept) for name in created) and any(name.startswith(doomed) for name in created)
    try:
        asked = await delete_topics_with_prefixes(kafka, [doomed])
        assert asked and all(name.startswith(doomed) for name in asked)
        deadline = time.monotonic() + 30
        while True:  # the broker deletes asynchronously
            left = await _topics(kafka)
            if not any(name.startswith(doomed) for name in left) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert not any(name.startswith(doomed) for name in left)
        assert {name for name in created if name.startswith(kept)} <= left
    finally:
        await delete_topics_with_prefixes(kafka, [kept])
    assert await delete_topics_with_prefixes(kafka, []) == []


def test_topics_delete_lists_first_deletes_with_yes_and_never_touches_the_platforms_topics(
        kafka, kafka_topics, monkeypatch):
    from typer.testing import CliRunner

    from citystream.cli import app
    from schemas.topics import CATALOGUE

    monkeypatch.setenv("CITYSTREAM_KAFKA_BOOTSTRAP", kafka.bootstrap)
    monkeypatch.setenv("CITYSTREAM_TOPIC_PREFIX", kafka_topics)
    runner = CliRunner()
    # The prefix the platform itself runs under: its own catalogue topics are refused, nothing is deleted.
    refused = runner.invoke(app, ["topics", "delete", "--prefix", kafka_topics, "--yes"])
    assert refused.exit_code == 2 and "platform's own topics" in refused.output
    assert runner.invoke(app, ["topics", "delete", "--prefix", ""]).exit_code == 2
    monkeypatch.setenv("CITYSTREAM_TOPIC_PREFIX", "")  # now the test's topics are leftovers of another run
    listed = runner.invoke(app, ["topics", "delete", "--prefix", kafka_topics])
    assert listed.exit_code == 0 and "would delete" in listed.output
    left = asyncio.run(_topics(kafka))
    assert any(name.startswith(kafka_topics) for name in left), "listing deletes nothing"
    deleted = runner.invoke(app, ["topics", "delete", "--prefix", kafka_topics, "--yes"])
    assert deleted.exit_code == 0 and f"deleting {len(CATALOGUE)} topic(s)" in deleted.output, deleted.output
