"""Sends a batch of gate records to Kafka and waits for every ack, within a deadline (no ack in time → unavailable).

Records go out as one record batch per partition, shared with the records of concurrent publishes
(kafka_batches.GroupSender); a publish is acknowledged when every batch holding its records is.

An idempotent producer whose batches expired while the broker was down is left with a gap in its sequence
numbers; after the broker is back every send fails with OutOfOrderSequenceNumber, for ever. aiokafka does not
reset the producer id itself, so the Publisher replaces such a producer with a fresh one (a new producer id).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from aiokafka.errors import InvalidProducerEpoch, OutOfOrderSequenceNumber, ProducerFenced, UnknownProducerId

from services.common.errors import DependencyUnavailable
from services.ingest import metrics
from services.ingest.kafka_batches import GroupSender
from services.ingest.records import OutRecord

log = logging.getLogger(__name__)

# Errors after which this producer id cannot send again: only a new producer helps.
PRODUCER_LOST = (OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerEpoch, ProducerFenced)


class Publisher:
    """Wraps an idempotent acks=all producer; `topic_of` maps catalogue names to deployed (prefixed) names.

    `renew`, when given, builds and starts a replacement producer after a PRODUCER_LOST error.
    """

    def __init__(self, producer, topic_of: Callable[[str], str], ack_timeout_s: float, path: str,
                 renew: Callable[[], Awaitable[object]] | None = None) -> None:
        self.producer = producer
        self._topic_of = topic_of
        self._ack_timeout_s = ack_timeout_s
        self._path = path
        self._renew = renew
        self._renewing = asyncio.Lock()
        self._retiring: set[asyncio.Task] = set()
        self._sender = GroupSender(producer, topic_of)

    async def publish(self, records: Sequence[OutRecord]) -> None:
        """Send all, then await all acks. Raises DependencyUnavailable when Kafka does not ack in time.

        Records sent before a timeout may still land: the caller's retry then produces duplicates, which the
        sink's `ON CONFLICT DO NOTHING` on (sensor_id, seq, observed_at) absorbs.
        """
        if not records:
            return
        started, producer, sender = time.perf_counter(), self.producer, self._sender
        try:
            await asyncio.wait_for(self._send_all(sender, records), self._ack_timeout_s)
        except Exception as problem:  # timeout, broker errors: all mean "not acknowledged"
            metrics.KAFKA_UNAVAILABLE.inc()
            log.warning("kafka did not acknowledge %d records: %r", len(records), problem)
            if isinstance(problem, PRODUCER_LOST) and self._renew is not None:
                await self._replace(producer, problem)
            raise DependencyUnavailable(f"kafka did not acknowledge in {self._ack_timeout_s}s") from problem
        metrics.ACK_LATENCY.labels(self._path).observe(time.perf_counter() - started)

    async def close(self) -> None:
        await self._sender.close()
        await self.producer.stop()
        await asyncio.gather(*self._retiring, return_exceptions=True)

    async def _replace(self, failed, problem: Exception) -> None:
        async with self._renewing:
            if self.producer is not failed:
                return  # a concurrent batch already replaced it
            try:
                fresh = await self._renew()
            except Exception as renew_problem:  # broker still away: the next failing batch tries again
                log.warning("could not replace the producer yet: %r", renew_problem)
                return
            self.producer = fresh
            old_sender, self._sender = self._sender, GroupSender(fresh, self._topic_of)
            await old_sender.close()
            log.warning("producer replaced after %r: it can no longer send", problem)
            retiring = asyncio.create_task(_retire(failed), name="producer-retire")
            self._retiring.add(retiring)
            retiring.add_done_callback(self._retiring.discard)

    async def _send_all(self, sender: GroupSender, records: Sequence[OutRecord]) -> None:
        # The batch futures are shared with the group's other callers: shield them, so a timeout here cancels
        # only this caller's wait.
        await asyncio.gather(*(asyncio.shield(future) for future in await sender.send(records)))


async def _retire(producer) -> None:
    try:
        await asyncio.wait_for(producer.stop(), 10)
    except Exception as problem:  # its batches are failing anyway; what matters is that it is closed
        log.info("retired producer stopped with %r", problem)
