"""The worker's output records of one batch (alert events to `citystream.alerts.v1`, rollups to
`citystream.rollups.1m.v1`, rejections to `citystream.readings.rejected.v1`, ticks to the internal ticks topic,
sensor states to the changelog topics), sent together once the batch is judged.

Records are appended to one record batch per topic partition (services/common/kafka_batches.py) of the worker's
idempotent producer, then every batch's acknowledgement is awaited: only then may the readings behind them be
committed. A batch that fails with a retriable error is sent again with backoff while the partition waits (nothing
is dropped). A non-retriable failure raises `SendFailed`: the record would be lost if the offsets moved past it,
so the worker stops committing and turns not-ready (services/anomaly/health.py) instead.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka.errors import KafkaTimeoutError

from services.anomaly import metrics
from services.common.kafka_batches import Record, send_records

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 5.0


class SendFailed(Exception):
    """An output record was refused for good (not retriable): its readings must not be committed."""


def retriable(problem: BaseException) -> bool:
    return bool(getattr(problem, "retriable", False)) or isinstance(problem, (asyncio.TimeoutError,
                                                                             KafkaTimeoutError))


class Outbox:
    def __init__(self) -> None:
        self.records: list[Record] = []

    def add(self, topic: str, key: bytes | None, value: bytes | None, headers: Any = None,
            partition: int | None = None) -> None:
        """Queue a record; `partition` None = the key's partition (DefaultPartitioner)."""
        self.records.append((topic, partition, key, value, headers))

    async def send(self, producer) -> dict[tuple[str, int], int]:
        """Send every record (a partition's records in order) and wait for all the acks; raises SendFailed.
        Returns the offset of the last record acknowledged per (topic, partition)."""
        acked: dict[tuple[str, int], int] = {}
        pending, backoff_s = self.records, 0.2
        self.records = []
        while pending:
            futures: list[tuple[asyncio.Future, list[Record]]] = []
            try:
                await send_records(producer, pending, futures)
            except Exception as problem:
                await asyncio.gather(*(future for future, _ in futures), return_exceptions=True)
                if not retriable(problem):
                    metrics.ERRORS.labels("publish").inc()
                    raise SendFailed(f"handing {len(pending)} records to the producer failed: {problem!r}") \
                        from problem
                futures = [(_failed(problem), pending)]  # all again: the idempotent producer drops what it has
            results = await asyncio.gather(*(future for future, _ in futures), return_exceptions=True)
            failed: list[Record] = []
            for (_, records), result in zip(futures, results, strict=True):
                if not isinstance(result, BaseException):
                    # A batch's metadata holds its first offset; its records took the ones after it. A batch the
                    # broker recognised as sent before may come back without one (-1): nothing to learn from it.
                    if result.offset >= 0:
                        where, last = (result.topic, result.partition), result.offset + len(records) - 1
                        acked[where] = max(last, acked.get(where, -1))
                    continue
                metrics.ERRORS.labels("publish").inc()
                if not retriable(result):
                    topic, _, key, _, _ = records[0]
                    log.error("%d records to %s (first key %r) refused: %r is not retriable; not committing past "
                              "them", len(records), topic, key, result)
                    raise SendFailed(f"records to {topic} refused: {result!r}") from result
                failed += records
            if failed:
                log.warning("%d records not acknowledged, sending again in %.1f s", len(failed), backoff_s)
                await asyncio.sleep(backoff_s)
                backoff_s = min(MAX_BACKOFF_S, backoff_s * 2)
            pending = failed
        return acked


def _failed(problem: BaseException) -> asyncio.Future:
    future = asyncio.get_running_loop().create_future()
    future.set_exception(problem)
    return future
