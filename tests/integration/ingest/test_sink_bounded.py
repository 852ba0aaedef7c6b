"""While the database is unreachable the sink holds one batch and pauses its partitions: however much is produced
meanwhile, what it has fetched stays at one batch, the lag metric keeps growing with what waits on the topic,
and once the database is back it resumes by itself and stores everything."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit, urlunsplit

from prometheus_client import REGISTRY

from schemas.common import Domain
from schemas.topics import readings_topic
from services.common.compacted import topic_partitions
from services.ingest.sink_worker import SinkWorker
from tests.integration.ingest.helpers import ingest_settings
from tests.integration.ingest.test_accounting import stored_keys, wait_for_rows
from tests.integration.ingest.test_sink_faults import produce_readings
from tests.support.tcp_proxy import TcpProxy

BATCH_MAX = 200


def lag_of(topic: str, partitions) -> float:
    return sum(REGISTRY.get_sample_value("citystream_ingest_sink_lag_records",
                                         {"topic": topic, "partition": str(tp.partition)}) or 0.0
               for tp in partitions)


async def test_database_down_pauses_fetching_holds_one_batch_reports_growing_lag_and_resumes(settings):
    uid = uuid.uuid4().hex[:8]
    target = urlsplit(settings.database_url)
    proxy = TcpProxy(target.hostname, target.port)
    await proxy.start()
    proxied_url = urlunsplit(target._replace(netloc=f"{target.username}:{target.password}@127.0.0.1:{proxy.port}"))
    sink_settings = ingest_settings(settings, sink_batch_max=BATCH_MAX, sink_backoff_max_s=0.5)
    sink_settings = sink_settings.model_copy(update={"database_url": proxied_url})
    worker = SinkWorker(sink_settings)
    topic = settings.topic(readings_topic(Domain.TRAFFIC))
    partitions = await topic_partitions(settings.kafka, topic)
    task = asyncio.create_task(worker.run())
    try:
        for _ in range(100):
            if worker.ready:
                break
            await asyncio.sleep(0.2)
        assert worker.ready
        await proxy.stop()  # the database goes away
        sent = await produce_readings(settings, uid, range(0, 1000))
        for _ in range(100):  # the sink fetched a batch and is retrying it
            if worker.held_records and not worker.database_ok:
                break
            await asyncio.sleep(0.1)
        assert worker.held_records and not worker.database_ok
        lag_before = lag_of(topic, partitions)
        sent |= await produce_readings(settings, uid, range(1000, 21_000))  # 20,000 more while it is down
        samples, lags = [], []
        for _ in range(25):
            consumer = worker.consumer
            held_positions = sum([await consumer.position(tp) for tp in consumer.assignment()])
            samples.append((worker.held_records, held_positions, set(consumer.paused()) == consumer.assignment()))
            lags.append(lag_of(topic, partitions))
            await asyncio.sleep(0.2)
        # Bounded: never more than one batch in hand, the consumer never moved past it, fetching paused throughout.
        assert all(held <= BATCH_MAX and positions <= BATCH_MAX and paused for held, positions, paused in samples), \
            samples
        assert await stored_keys(settings.database_url, f"traffic-{uid}-") == []
        # The lag metric did not freeze: it counts what waits on the topic (all of it, nothing is stored).
        assert lag_before < 21_000 <= max(lags), (lag_before, lags)

        await proxy.start()  # back: the sink resumes by itself
        keys = await wait_for_rows(settings.database_url, f"traffic-{uid}-", len(sent), timeout_s=90)
        assert set(keys) == sent and len(keys) == len(sent)
        assert worker.consumer.paused() == set()
    finally:
        worker.stopping.set()
        await asyncio.wait_for(task, 30)
        await proxy.stop()
