"""The compacted-topic follower releases its Kafka client even when the broker refuses the start."""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaConnectionError

from services.common import compacted


class RefusingConsumer:
    def __init__(self) -> None:
        self.stopped = False

    async def start(self) -> None:
        raise KafkaConnectionError("no broker")

    async def stop(self) -> None:
        self.stopped = True


async def test_a_failed_start_still_closes_the_consumer(monkeypatch):
    consumer = RefusingConsumer()
    monkeypatch.setattr(compacted, "make_consumer", lambda *args, **kwargs: consumer)
    follower = compacted.CompactedTopicFollower("127.0.0.1:1", "t", lambda key, value: None, client_id="test")
    with pytest.raises(KafkaConnectionError):
        await follower._follow()
    assert consumer.stopped and not follower.caught_up.is_set()
