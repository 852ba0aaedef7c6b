"""The worker's output records of one batch (alert events to `citystream.alerts.v1`, rollups to
`citystream.rollups.1m.v1`, rejections to `citystream.readings.rejected.v1`, ticks to the internal ticks topic),
sent together once the batch is judged.

Every record is handed to the producer without waiting for its acknowledgement, so the producer's linger packs
a batch's records into few requests; then all acknowledgements are awaited before the agent takes its next batch,
which is what lets Faust ack (and later commit) the batch's readings. A send that fails with a retriable error is
sent again with backoff while the partition waits (nothing is dropped); a non-retriable failure is logged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from aiokafka.errors import KafkaTimeoutError

from services.anomaly import metrics

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 5.0


class Producer(Protocol):
    async def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None,
                   timestamp: float | None, headers: Any) -> Any: ...


class Outbox:
    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes, Any]] = []

    def add(self, topic: str, key: bytes | None, value: bytes, headers: Any = None) -> None:
        self.records.append((topic, key, value, headers))

    async def send(self, producer: Producer) -> None:
        """Send every record (in order: the producer keeps per-partition order) and wait for all the acks."""
        pending, backoff_s = self.records, 0.2
        self.records = []
        while pending:
            futures = [await producer.send(topic, key, value, None, None, headers)
                       for topic, key, value, headers in pending]
            results = await asyncio.gather(*futures, return_exceptions=True)
            failed = []
            for record, result in zip(pending, results, strict=True):
                if not isinstance(result, BaseException):
                    continue
                metrics.ERRORS.labels("publish").inc()
                if getattr(result, "retriable", False) or isinstance(result, (asyncio.TimeoutError, KafkaTimeoutError)):
                    failed.append(record)
                else:
                    log.error("dropped a record to %s (key %r): %r is not retriable", record[0], record[1], result)
            if failed:
                log.warning("%d records not acknowledged, sending again in %.1f s", len(failed), backoff_s)
                await asyncio.sleep(backoff_s)
                backoff_s = min(MAX_BACKOFF_S, backoff_s * 2)
            pending = failed
