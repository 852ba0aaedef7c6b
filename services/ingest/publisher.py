"""Sends a batch of gate records to Kafka and waits for every ack, within a deadline (no ack in time → unavailable)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from services.common.errors import DependencyUnavailable
from services.ingest import metrics
from services.ingest.records import OutRecord

log = logging.getLogger(__name__)


class Publisher:
    """Wraps an idempotent acks=all producer; `topic_of` maps catalogue names to deployed (prefixed) names."""

    def __init__(self, producer, topic_of: Callable[[str], str], ack_timeout_s: float, path: str) -> None:
        self._producer = producer
        self._topic_of = topic_of
        self._ack_timeout_s = ack_timeout_s
        self._path = path

    async def publish(self, records: Sequence[OutRecord]) -> None:
        """Send all, then await all acks. Raises DependencyUnavailable when Kafka does not ack in time.

        Records sent before a timeout may still land: the caller's retry then produces duplicates, which the
        sink's `ON CONFLICT DO NOTHING` on (sensor_id, seq, observed_at) absorbs.
        """
        if not records:
            return
        started = time.perf_counter()
        try:
            await asyncio.wait_for(self._send_all(records), self._ack_timeout_s)
        except Exception as problem:  # timeout, broker errors: all mean "not acknowledged"
            metrics.KAFKA_UNAVAILABLE.inc()
            log.warning("kafka did not acknowledge %d records: %r", len(records), problem)
            raise DependencyUnavailable(f"kafka did not acknowledge in {self._ack_timeout_s}s") from problem
        metrics.ACK_LATENCY.labels(self._path).observe(time.perf_counter() - started)

    async def _send_all(self, records: Sequence[OutRecord]) -> None:
        pending = []
        try:
            for record in records:
                pending.append(await self._producer.send(
                    self._topic_of(record.topic), record.value, key=record.key, headers=record.headers))
            await asyncio.gather(*pending)
        except BaseException:
            for future in pending:  # nobody will await them any more; keep asyncio quiet about lost exceptions
                future.add_done_callback(_consume_exception)
            raise


def _consume_exception(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()
