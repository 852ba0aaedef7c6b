"""The sink: consumes readings, rejected, alerts and rollups topics in batches and stores them in TimescaleDB.

Offsets are committed only after the database commit. While the database is unreachable the batch is retried
with exponential backoff and fetching is paused, so memory stays bounded; it resumes by itself. A poison record
is dead-lettered to `citystream.readings.rejected.v1` with its topic[partition]@offset and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from datetime import UTC, datetime

import asyncpg

from schemas.rejections import RejectionReason
from services.common.kafka import make_consumer, make_producer
from services.ingest import metrics
from services.ingest.gate import Rejected
from services.ingest.publisher import Publisher
from services.ingest.records import rejected_record
from services.ingest.settings import IngestSettings
from services.ingest.sink_rows import SINK_TOPICS, TABLE_BY_TOPIC, Poison, to_row
from services.ingest.sink_writer import is_data_error, write_rows

log = logging.getLogger(__name__)


class SinkWorker:
    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self._topics = {settings.topic(name): name for name in SINK_TOPICS}
        self._connection: asyncpg.Connection | None = None
        self.stopping = asyncio.Event()
        self.healthy_db = False

    async def run(self) -> None:
        settings = self.settings
        consumer = make_consumer(settings.kafka_bootstrap, settings.topic_prefix + settings.sink_group_id,
                                 *self._topics, max_poll_records=settings.sink_batch_max, client_id="ingest-sink")
        producer = make_producer(settings.kafka_bootstrap, "ingest-sink")
        await consumer.start()
        await producer.start()
        dead_letters = Publisher(producer, settings.topic, 10.0, "sink")
        try:
            while not self.stopping.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=settings.sink_batch_max)
                if batch:
                    await self._store(consumer, dead_letters, batch)
                await self._report_lag(consumer)
        finally:
            await consumer.stop()
            await producer.stop()
            if self._connection is not None:
                await self._connection.close()

    async def _store(self, consumer, dead_letters: Publisher, batch: dict) -> None:
        rows_by_table: dict[str, list[tuple]] = defaultdict(list)
        poison = []
        for tp, records in batch.items():
            table = TABLE_BY_TOPIC[self._topics[tp.topic]]
            for record in records:
                try:
                    rows_by_table[table].append(to_row(table, record.value))
                except Poison as problem:
                    poison.append((record, str(problem)))
        metrics.SINK_BATCH.observe(sum(len(records) for records in batch.values()))
        if poison:
            await self._dead_letter(dead_letters, poison)
        await self._write_with_retry(consumer, dict(rows_by_table))
        try:
            await consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})
        except Exception as problem:  # a rebalance took the partition: the new owner re-stores (idempotent)
            log.warning("offset commit failed, records will be stored again by their next owner: %r", problem)

    async def _write_with_retry(self, consumer, rows_by_table: dict[str, list[tuple]]) -> None:
        backoff_s, paused = 0.2, False
        while True:
            try:
                connection = await self._connect()
                inserted = await write_rows(connection, rows_by_table)
            except Exception as problem:
                if is_data_error(problem):
                    await self._write_one_by_one(rows_by_table)
                    break
                await self._drop_connection()
                self.healthy_db = False
                metrics.SINK_RETRIES.inc()
                if not paused:
                    consumer.pause(*consumer.assignment())
                    paused = True
                log.warning("database write failed (%r); retrying in %.1f s", problem, backoff_s)
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, self.settings.sink_backoff_max_s)
                continue
            self.healthy_db = True
            for table, rows in rows_by_table.items():
                metrics.SINK_ROWS.labels(table).inc(len(rows))
                metrics.SINK_INSERTED.labels(table).inc(inserted.get(table, 0))
            break
        if paused:
            consumer.resume(*consumer.assignment())
            log.info("database is back; sink resumed")

    async def _write_one_by_one(self, rows_by_table: dict[str, list[tuple]]) -> None:
        """A batch with a bad row: store the good ones, log the bad ones (their record is already in Kafka)."""
        connection = await self._connect()
        for table, rows in rows_by_table.items():
            for row in rows:
                try:
                    await write_rows(connection, {table: [row]})
                except Exception as problem:
                    if not is_data_error(problem):
                        raise
                    log.error("row refused by %s and skipped: %r (%r)", table, row[:4], problem)

    async def _connect(self) -> asyncpg.Connection:
        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(self.settings.database_url, timeout=5, command_timeout=30)
        return self._connection

    async def _drop_connection(self) -> None:
        if self._connection is not None:
            self._connection.terminate()
            self._connection = None

    async def _dead_letter(self, dead_letters: Publisher, poison: list) -> None:
        now = datetime.now(UTC)
        out = []
        for record, reason in poison:
            where = f"{record.topic}[{record.partition}]@{record.offset}"
            log.error("poison record %s (key %r) dead-lettered: %s", where, record.key, reason)
            metrics.SINK_DEAD_LETTERS.labels(record.topic).inc()
            sensor = record.key.decode("utf-8", errors="replace") if record.key else None
            rejection = Rejected(RejectionReason.MALFORMED, f"sink could not store {where}: {reason}", None, sensor)
            # Deterministic id: a replay after a crash dead-letters the same event, stored once by the sink.
            event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"citystream-sink:{where}"))
            out.append(rejected_record(rejection, record.value, "sink", now, self.settings.produced_by,
                                       event_id=event_id))
        await dead_letters.publish(out)

    async def _report_lag(self, consumer) -> None:
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                lag = max(0, highwater - await consumer.position(tp))
                metrics.SINK_LAG.labels(tp.topic, str(tp.partition)).set(lag)
