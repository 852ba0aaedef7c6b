"""The Publisher replaces a producer that lost its idempotence state (OutOfOrderSequenceNumber after a broker
restart): the failing batch is answered unavailable, the next one goes out on a fresh producer."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaConnectionError, OutOfOrderSequenceNumber

from services.common.errors import DependencyUnavailable
from services.ingest.publisher import Publisher
from services.ingest.records import OutRecord

RECORDS = [OutRecord("citystream.readings.traffic.v1", b"traffic-1", b"{}", [])]


class FakeBatch:
    def __init__(self) -> None:
        self.records: list[tuple] = []

    def append(self, *, timestamp, key, value, headers):
        self.records.append((key, value, headers))
        return object()  # aiokafka returns record metadata; None would mean "batch full"


class FakeProducer:
    """The slice of AIOKafkaProducer the Publisher uses: partitions_for, create_batch, send_batch."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error, self.sent, self.stopped, self.batches = error, 0, False, 0

    async def partitions_for(self, topic):
        return {0, 1, 2}

    def create_batch(self) -> FakeBatch:
        return FakeBatch()

    async def send_batch(self, batch, topic, *, partition):
        self.sent += len(batch.records)  # records sent
        self.batches += 1
        future = asyncio.get_running_loop().create_future()
        if self.error is None:
            future.set_result(None)
        else:
            future.set_exception(self.error)
        return future

    async def stop(self) -> None:
        self.stopped = True


def publisher_with(first: FakeProducer, error_of_renew: Exception | None = None):
    made: list[FakeProducer] = []

    async def renew() -> FakeProducer:
        if error_of_renew is not None:
            raise error_of_renew
        made.append(FakeProducer())
        return made[-1]

    return Publisher(first, lambda name: name, 1.0, "http", renew), made


async def test_a_producer_out_of_sequence_is_replaced_once_and_the_retry_goes_through():
    broken = FakeProducer(OutOfOrderSequenceNumber())
    publisher, made = publisher_with(broken)
    results = await asyncio.gather(*(publisher.publish(RECORDS) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(result, DependencyUnavailable) for result in results)  # never a 2xx without an ack
    assert len(made) == 1 and publisher.producer is made[0]  # concurrent failures renew once
    await publisher.publish(RECORDS)
    assert made[0].sent == 1
    await publisher.close()
    assert broken.stopped and made[0].stopped


async def test_a_plain_outage_keeps_the_producer():
    down = FakeProducer(KafkaConnectionError())
    publisher, made = publisher_with(down)
    with pytest.raises(DependencyUnavailable):
        await publisher.publish(RECORDS)
    assert made == [] and publisher.producer is down


async def test_when_renewing_fails_the_old_producer_stays_and_the_next_failure_tries_again():
    broken = FakeProducer(OutOfOrderSequenceNumber())
    publisher, _ = publisher_with(broken, error_of_renew=KafkaConnectionError())
    for _ in range(2):
        with pytest.raises(DependencyUnavailable):
            await publisher.publish(RECORDS)
    assert publisher.producer is broken and broken.sent == 2 and not broken.stopped


async def test_concurrent_publishes_share_batches_and_each_waits_for_its_own_acks():
    producer = FakeProducer()
    publisher, _ = publisher_with(producer)
    records = [OutRecord("citystream.readings.traffic.v1", f"traffic-{n}".encode(), b"{}", []) for n in range(50)]
    await asyncio.gather(*(publisher.publish(records) for _ in range(4)))
    assert producer.sent == 200  # every record of every caller handed over once
    assert producer.batches <= 3 * 2  # first caller's group, then the other three together: ≤ one batch per partition each
