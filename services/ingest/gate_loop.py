"""The Kafka-native gate's consume loop: `citystream.readings.raw.v1` in batches through `gate_event`, the results
produced to the readings / rejected topics, and the offsets committed only after Kafka acknowledged them.

A plain aiokafka consumer group (`<gate_app_id>.raw`) run as a task of the Faust gate app: Faust's per-event stream
machinery cost ~100 µs of CPU per record here, ten times the gate itself (docs/benchmarks.md). At-least-once: a
crash or rebalance between produce and commit re-gates the batch; the deterministic event-id and the sink's
ON CONFLICT make that harmless.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from datetime import UTC, datetime

from aiokafka import ConsumerRebalanceListener

from schemas.rejections import RejectionReason
from schemas.topics import RAW_READINGS
from services.common.kafka import make_consumer
from services.ingest import metrics
from services.ingest.credentials import CredentialChecks
from services.ingest.gate import Rejected
from services.ingest.gate_event import gate_event
from services.ingest.ratelimit import RateLimiter
from services.ingest.records import OutRecord, rejected_record
from services.ingest.runtime import GateRuntime

log = logging.getLogger(__name__)
TAKE_MAX, TAKE_WAIT_MS = 5000, 200


def gate_records(runtime: GateRuntime, records, now: datetime) -> tuple[list[OutRecord], Counter]:
    """Raw consumer records → records to produce, and the metric tally. A failure on one record dead-letters it
    with its topic[partition]@offset and the loop carries on."""
    out, tally, credentials = [], Counter(), CredentialChecks(now)
    for record in records:
        try:
            produced, labels = gate_event(runtime, record.key, record.value, record.headers, now, credentials,
                                          sent_at_s=record.timestamp / 1000)
        except Exception as problem:  # a bug must not stop the stream: dead-letter with context
            where = f"{record.topic}[{record.partition}]@{record.offset}"
            log.exception("gate failed on %s", where)
            rejection = Rejected(RejectionReason.MALFORMED, f"gate error on {where}: {problem!r}")
            produced = rejected_record(rejection, record.value, "kafka", now, runtime.settings.produced_by)
            labels = ("rejected", "MALFORMED", "")
        out.append(produced)
        tally[labels] += 1
    return out, tally


class LimiterFollowsPartitions(ConsumerRebalanceListener):
    """Tells the rate limiter when this gate's partitions changed (any change: gained ones were another gate's)."""

    def __init__(self, limiter: RateLimiter, clock=time.time) -> None:
        self.limiter, self.clock = limiter, clock
        self.held: frozenset = frozenset()

    async def on_partitions_revoked(self, revoked) -> None:
        pass

    async def on_partitions_assigned(self, assigned) -> None:
        if frozenset(assigned) != self.held:
            self.held = frozenset(assigned)
            now_s = self.clock()
            self.limiter.after_rebalance(now_s)
            metrics.GATE_REBALANCED_AT.set(now_s)
            log.info("gate holds %s; rate-limit buckets restarted cautiously", sorted(tp.partition for tp in assigned))


async def run_gate_loop(runtime: GateRuntime) -> None:
    """Consume, gate, produce, wait for the acks, commit; until cancelled.

    Two batches overlap: batch N+1 is fetched and gated while batch N waits for its acks (a wait that is mostly
    the broker's and the network's, not this process's CPU). Batches are committed in order and a batch is
    committed only after its own acks, so at most two batches are in memory and a crash re-gates only those."""
    settings = runtime.settings
    await runtime.wait_ready(timeout_s=600)
    consumer = make_consumer(settings.kafka, f"{settings.gate_app_id}.raw", client_id="ingest-gate",
                             max_poll_records=TAKE_MAX, **settings.consumer_group_timing)
    # Rate limits follow the partitions: when they move, the limiter must not hand out a fresh minute's allowance
    # the previous owner may already have granted (services/ingest/ratelimit.py).
    consumer.subscribe([settings.topic(RAW_READINGS)], listener=LimiterFollowsPartitions(runtime.limiter))
    await consumer.start()
    log.info("gate consuming %s as group %s.raw", settings.topic(RAW_READINGS), settings.gate_app_id)
    in_flight: asyncio.Task | None = None
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=TAKE_WAIT_MS, max_records=TAKE_MAX)
            if not batch:
                continue
            records = [record for partition_records in batch.values() for record in partition_records]
            out, tally = gate_records(runtime, records, datetime.now(UTC))
            metrics.BATCH_SIZE.labels("kafka").observe(len(records))
            if in_flight is not None:
                await in_flight  # the previous batch is acked and committed before this one may be
            offsets = {tp: rs[-1].offset + 1 for tp, rs in batch.items()}
            in_flight = asyncio.create_task(_publish_and_commit(runtime, consumer, out, offsets, tally))
    finally:
        if in_flight is not None:
            in_flight.cancel()  # not committed: the group's next owner (or this one restarted) gates it again
            await asyncio.gather(in_flight, return_exceptions=True)
        await consumer.stop()


async def _publish_and_commit(runtime: GateRuntime, consumer, out: list[OutRecord], offsets: dict,
                              tally: Counter) -> None:
    await publish_until_acked(runtime, out)  # only then may the offsets move
    try:
        await consumer.commit(offsets)
    except Exception as problem:  # a rebalance took the partition: its next owner re-gates (idempotent)
        log.warning("offset commit failed, the batch will be gated again by its next owner: %r", problem)
    for (outcome, reason, domain), count in tally.items():
        metrics.READINGS.labels("kafka", outcome, reason, domain).inc(count)


async def publish_until_acked(runtime: GateRuntime, out: list[OutRecord]) -> None:
    backoff_s = 0.5
    while True:
        try:
            await runtime.publisher.publish(out)
            return
        except Exception as problem:
            log.warning("gate output not acknowledged (%r); retrying in %.1f s", problem, backoff_s)
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, 10.0)
