"""The metrics the ingest promises exist and move on real traffic: readings by outcome, reason and domain, batch
sizes, ack latency, sink rows (rows/s is their rate), sink batches and sink lag."""

from __future__ import annotations

import asyncio
import uuid

from prometheus_client import REGISTRY

from schemas.common import Domain
from schemas.topics import readings_topic
from services.ingest.sink_worker import SinkWorker
from tests.integration.ingest.helpers import bearer, http_ingest, ingest_settings, publish_register
from tests.integration.ingest.test_accounting import wait_for_rows
from tests.support.ingest_factories import new_credential, reading, registration

WATCHED = {
    "admitted": ("citystream_ingest_readings_total",
                 {"path": "http", "outcome": "admitted", "reason": "", "domain": "energy"}),
    "undeclared": ("citystream_ingest_readings_total",
                   {"path": "http", "outcome": "rejected", "reason": "UNDECLARED_METRIC", "domain": "energy"}),
    "unknown": ("citystream_ingest_readings_total",
                {"path": "http", "outcome": "rejected", "reason": "UNKNOWN_SENSOR", "domain": ""}),
    "batches": ("citystream_ingest_batch_readings_count", {"path": "http"}),
    "batch_readings": ("citystream_ingest_batch_readings_sum", {"path": "http"}),
    "acks": ("citystream_ingest_ack_latency_seconds_count", {"path": "http"}),
    "sink_rows": ("citystream_ingest_sink_rows_total", {"table": "readings"}),
    "sink_inserted": ("citystream_ingest_sink_rows_inserted_total", {"table": "readings"}),
    "sink_batches": ("citystream_ingest_sink_batch_records_count", {}),
}


def sample(name: str, labels: dict) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def snapshot() -> dict[str, float]:
    return {key: sample(name, labels) for key, (name, labels) in WATCHED.items()}


def sink_lags(topic: str) -> dict[str, float]:
    return {sample.labels["partition"]: sample.value
            for metric in REGISTRY.collect() if metric.name == "citystream_ingest_sink_lag_records"
            for sample in metric.samples if sample.labels.get("topic") == topic}


async def test_ingest_and_sink_metrics_move_with_traffic(settings):
    uid = uuid.uuid4().hex[:8]
    sensor = f"energy-{uid}-m"
    key, stored = new_credential()
    await publish_register(settings, registration(sensor, stored, domain=Domain.ENERGY))
    config = ingest_settings(settings)
    before = snapshot()
    async with http_ingest(config) as (client, _):
        readings = [reading(seq, activePower=float(seq)) for seq in range(5)] + [reading(5, intensity=1.0)]
        mixed = await client.post("/v1/readings", json={"readings": readings}, headers=bearer(key))
        assert mixed.status_code == 207, mixed.text
        stranger = await client.post("/v1/readings", json={"readings": [reading(1, sensor_id=f"energy-{uid}-x")]},
                                     headers=bearer(key))
        assert (stranger.status_code, stranger.json()["reason"]) == (404, "UNKNOWN_SENSOR"), stranger.text
    sink = SinkWorker(config)
    task = asyncio.create_task(sink.run())
    try:
        assert len(await wait_for_rows(settings.database_url, sensor, 5)) == 5
        lag_topic = settings.topic(readings_topic(Domain.ENERGY))
        lags: dict[str, float] = {}
        for _ in range(40):  # the gauge is set after each poll, per assigned partition
            lags = sink_lags(lag_topic)
            if lags and all(lag == 0 for lag in lags.values()):
                break
            await asyncio.sleep(0.25)
    finally:
        sink.stopping.set()
        await asyncio.wait_for(task, 30)
    after = snapshot()
    moved = {key: after[key] - before[key] for key in WATCHED}
    assert moved["admitted"] == 5
    assert moved["undeclared"] == 1  # a rejection counts under the sensor's registered domain
    assert moved["unknown"] == 1  # an unknown sensor has none
    assert moved["batches"] == 2 and moved["batch_readings"] == 7
    assert moved["acks"] == 2  # each batch waited for its Kafka acks (the 207 and the one rejection record)
    assert moved["sink_rows"] >= 5 and moved["sink_inserted"] >= 5 and moved["sink_batches"] >= 1
    assert lags and all(lag == 0 for lag in lags.values()), lags  # caught up with the end of the partitions
