"""The sink: consumes readings, rejected, alerts and rollups topics in batches and stores them in TimescaleDB.

Offsets are committed only after the database commit. While the database is unreachable the batch is retried
with exponential backoff and fetching is paused, so memory stays bounded; it resumes by itself. A poison record,
or a row the database refuses for its content, is dead-lettered to `citystream.readings.rejected.v1` with its
topic[partition]@offset and the reason, then skipped: nothing vanishes, nothing blocks the partition.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from datetime import UTC, datetime

import asyncpg
from aiokafka import ConsumerRebalanceListener

from services.common.kafka import make_consumer, make_producer
from services.ingest import metrics
from services.ingest.publisher import Publisher
from services.ingest.settings import IngestSettings
from services.ingest.sink_dead_letters import dead_letter_record, where
from services.ingest.sink_rows import SINK_TOPICS, TABLE_BY_TOPIC, Poison, to_row
from services.ingest.sink_writer import is_data_error, write_rows

log = logging.getLogger(__name__)


class _Membership(ConsumerRebalanceListener):
    """Remembers that the consumer joined its group (an assignment arrived, even an empty one)."""

    def __init__(self) -> None:
        self.joined = False

    async def on_partitions_revoked(self, revoked) -> None:
        pass  # a new assignment follows at once; the member stays in the group

    async def on_partitions_assigned(self, assigned) -> None:
        self.joined = True


class SinkWorker:
    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self._topics = {settings.topic(name): name for name in SINK_TOPICS}
        self._connection: asyncpg.Connection | None = None
        self._membership = _Membership()
        self._database_checked_at = 0.0
        self.stopping = asyncio.Event()
        self.database_ok = False
        self.consumer = None  # the running consumer (for readiness and tests: paused partitions, positions)
        self.held_records = 0  # records fetched and not yet stored: at most one batch (sink_batch_max)

    @property
    def consumer_joined(self) -> bool:
        return self._membership.joined

    @property
    def ready(self) -> bool:
        """Database reachable (probed at start and every `sink_db_probe_s`) and the consumer in its group."""
        return self.database_ok and self.consumer_joined

    async def run(self) -> None:
        settings = self.settings
        consumer = make_consumer(settings.kafka, settings.topic_prefix + settings.sink_group_id,
                                 max_poll_records=settings.sink_batch_max, client_id="ingest-sink",
                                 max_partition_fetch_bytes=4 << 20,  # one fetch can fill a batch
                                 # Under load the broker answers once 256 KiB are there (≤ 100 ms): fewer, larger
                                 # COPY transactions. `make bench` (45 s detected phase): PostgreSQL 8.0 → 7.0 and
                                 # the sink 8.0 → 7.5 µs of CPU per stored reading.
                                 fetch_min_bytes=256 << 10, fetch_max_wait_ms=100,
                                 **settings.consumer_group_timing)
        self._membership = _Membership()
        consumer.subscribe(list(self._topics), listener=self._membership)
        self.consumer = consumer
        producer = make_producer(settings.kafka, "ingest-sink")
        dead_letters = Publisher(producer, settings.topic, 10.0, "sink")
        try:
            await self._probe_database()
            await consumer.start()
            await producer.start()
            while not self.stopping.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=settings.sink_batch_max)
                if batch:
                    await self._store(consumer, dead_letters, batch)
                await self._report_lag(consumer)
                if time.monotonic() - self._database_checked_at > settings.sink_db_probe_s:
                    await self._probe_database()
        finally:
            self._membership.joined = False
            self.consumer = None
            await consumer.stop()
            await producer.stop()
            if self._connection is not None:
                await self._connection.close(timeout=5)  # bounded: a stuck server must not hang the stop
                self._connection = None

    async def _store(self, consumer, dead_letters: Publisher, batch: dict) -> None:
        self.held_records = sum(len(records) for records in batch.values())
        try:
            await self._store_held(consumer, dead_letters, batch)
        finally:
            self.held_records = 0

    async def _store_held(self, consumer, dead_letters: Publisher, batch: dict) -> None:
        rows_by_table: dict[str, list[tuple]] = defaultdict(list)
        records_by_table: dict[str, list] = defaultdict(list)  # parallel to rows_by_table, to name refused rows
        unstorable = []
        for tp, records in batch.items():
            table = TABLE_BY_TOPIC[self._topics[tp.topic]]
            for record in records:
                try:
                    rows_by_table[table].append(to_row(table, record.value))
                    records_by_table[table].append(record)
                except Poison as problem:
                    unstorable.append((record, str(problem)))
        metrics.SINK_BATCH.observe(sum(len(records) for records in batch.values()))
        next_to_store = {tp: records[0].offset for tp, records in batch.items()}
        unstorable += await self._write_with_retry(consumer, dict(rows_by_table), dict(records_by_table),
                                                   next_to_store)
        if unstorable:  # before the offset commit: a crash in between dead-letters them again, under the same id
            await self._dead_letter(dead_letters, unstorable)
        try:
            await consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})
        except Exception as problem:  # a rebalance took the partition: the new owner re-stores (idempotent)
            log.warning("offset commit failed, records will be stored again by their next owner: %r", problem)

    async def _write_with_retry(self, consumer, rows_by_table: dict, records_by_table: dict,
                                next_to_store: dict | None = None) -> list:
        """Store the batch; retry transient failures forever. Returns (record, reason) of rows the database refused."""
        backoff_s, paused = 0.2, False
        while True:
            try:
                connection = await self._connect()
                try:
                    inserted, refused = await write_rows(connection, rows_by_table), []
                except Exception as problem:
                    if not is_data_error(problem):
                        raise
                    inserted, refused = await self._write_around_refused(connection, rows_by_table,
                                                                         records_by_table)
            except Exception as problem:
                await self._drop_connection()
                self.database_ok = False
                metrics.SINK_RETRIES.inc()
                if not paused:
                    consumer.pause(*consumer.assignment())
                    paused = True
                log.warning("database write failed (%r); retrying in %.1f s", problem, backoff_s)
                await self._report_lag_while_stuck(consumer, next_to_store or {})
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, self.settings.sink_backoff_max_s)
                continue
            self._mark_database_ok()
            for table, rows in rows_by_table.items():
                metrics.SINK_ROWS.labels(table).inc(len(rows))
                metrics.SINK_INSERTED.labels(table).inc(inserted.get(table, 0))
            break
        if paused:
            consumer.resume(*consumer.assignment())
            log.info("database is back; sink resumed")
        return refused

    async def _write_around_refused(self, connection, rows_by_table: dict, records_by_table: dict):
        """A batch the database refused for its data: bisect each table's rows down to the refused ones."""
        inserted: dict[str, int] = {}
        refused: list = []

        async def bisect(table: str, rows: list, records: list) -> None:
            try:
                inserted[table] = inserted.get(table, 0) + (await write_rows(connection, {table: rows})).get(table, 0)
                return
            except Exception as problem:
                if not is_data_error(problem):
                    raise
                if len(rows) == 1:
                    log.error("row of %s refused by table %s: %r", where(records[0]), table, problem)
                    refused.append((records[0], f"database refused the row: {type(problem).__name__}: {problem}"))
                    return
            middle = len(rows) // 2
            await bisect(table, rows[:middle], records[:middle])
            await bisect(table, rows[middle:], records[middle:])

        for table, rows in rows_by_table.items():
            await bisect(table, rows, records_by_table[table])
        return inserted, refused

    async def _probe_database(self) -> None:
        try:
            connection = await self._connect()
            await connection.fetchval("SELECT 1", timeout=self.settings.sink_db_probe_timeout_s)
        except Exception as problem:  # unreachable or broken: not ready until a probe or a write succeeds
            if self.database_ok:
                log.warning("database probe failed: %r", problem)
            self.database_ok = False
            self._database_checked_at = time.monotonic()
            await self._drop_connection()
        else:
            self._mark_database_ok()

    def _mark_database_ok(self) -> None:
        self.database_ok = True
        self._database_checked_at = time.monotonic()

    async def _connect(self) -> asyncpg.Connection:
        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(self.settings.database_url, timeout=5, command_timeout=30)
        return self._connection

    async def _drop_connection(self) -> None:
        if self._connection is not None:
            self._connection.terminate()
            self._connection = None

    async def _dead_letter(self, dead_letters: Publisher, unstorable: list) -> None:
        now = datetime.now(UTC)
        for record, reason in unstorable:
            log.error("record %s (key %r) dead-lettered: %s", where(record), record.key, reason)
            metrics.SINK_DEAD_LETTERS.labels(record.topic).inc()
        await dead_letters.publish([dead_letter_record(record, reason, now, self.settings.produced_by)
                                    for record, reason in unstorable])

    async def _report_lag_while_stuck(self, consumer, next_to_store: dict) -> None:
        """Lag while a batch waits for the database: end offsets asked of the broker (paused partitions fetch
        nothing, so the highwater a fetch brings stops moving) minus the next offset to store — the first of the
        batch in hand, else the consumer's position. Broker trouble leaves the last figure in place."""
        partitions = list(consumer.assignment())
        if not partitions:
            return
        try:
            ends = await asyncio.wait_for(consumer.end_offsets(partitions), 2.0)
            for tp, end in ends.items():
                start = next_to_store.get(tp)
                if start is None:
                    start = await consumer.position(tp)
                metrics.SINK_LAG.labels(tp.topic, str(tp.partition)).set(max(0, end - start))
        except Exception as problem:  # the lag figure is best effort; the retry loop must go on
            log.info("sink lag not updated: %r", problem)

    async def _report_lag(self, consumer) -> None:
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                lag = max(0, highwater - await consumer.position(tp))
                metrics.SINK_LAG.labels(tp.topic, str(tp.partition)).set(lag)
