"""The worker's consumer-lag gauge against the real Kafka: readings produced while it is stopped show up as lag on
its readings partitions once it is back, and the lag is 0 on every partition once it has caught up."""

from __future__ import annotations

import asyncio
import time

import httpx

from schemas.headers import make_headers
from schemas.topics import readings_topic
from services.common import jsonwire
from services.common.kafka import make_producer
from tests.integration.anomaly.worker import Worker, produce, reading

T0 = 1_767_600_000.0
SENSORS = [f"loop-lag-{i:03d}" for i in range(200)]
BACKLOG_PER_SENSOR = 100  # 20,000 readings: several seconds of draining, many gauge updates (every 0.5 s)
GAUGE = "citystream_anomaly_consumer_lag_records"


def traffic(sensor: str, seq: int) -> dict:
    return reading(sensor, seq, T0 + seq * 300, "traffic", intensity=40.0 + seq % 7, averageVehicleSpeed=50.0,
                   occupancy=0.2)


def scrape(worker: Worker) -> tuple[dict[tuple[str, str], float], float] | None:
    """({(topic, partition): lag}, readings judged) from the worker's /metrics; None while it does not answer."""
    try:
        text = httpx.get(f"http://127.0.0.1:{worker.port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return None
    lags, judged = {}, 0.0
    for line in text.splitlines():
        if line.startswith(GAUGE + "{"):
            labels, value = line[len(GAUGE) + 1:].rsplit("} ", 1)
            pairs = dict(part.split("=", 1) for part in labels.split(","))
            lags[(pairs["topic"].strip('"'), pairs["partition"].strip('"'))] = float(value)
        elif line.startswith("citystream_anomaly_readings_total{"):
            judged += float(line.rsplit(" ", 1)[1])
    return lags, judged


async def produce_backlog(bootstrap: str, topic: str) -> int:
    producer = make_producer(bootstrap, "anomaly-lag-test", linger_ms=20)
    await producer.start()
    try:
        sends = [await producer.send(topic, jsonwire.dumps(traffic(s, seq)), key=s.encode(),
                                     headers=make_headers(topic, "test"))
                 for seq in range(1, BACKLOG_PER_SENSOR + 1) for s in SENSORS]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    return len(sends)


async def test_lag_shows_a_backlog_per_partition_and_returns_to_zero(kafka, kafka_topics, tmp_path,
                                                                    anomaly_app_id):
    topic = kafka_topics + readings_topic("traffic")
    partitions = {(topic, str(p)) for p in range(4)}  # the catalogue's readings topics have four
    worker = Worker(kafka, kafka_topics, anomaly_app_id,
                    tmp_path / "worker.log", CITYSTREAM_ANOMALY_LAG_INTERVAL_S="0.5")
    try:
        worker.start()
        await produce(kafka, topic, [(s, traffic(s, 0)) for s in SENSORS[:8]])
        deadline = time.monotonic() + 60
        while not ((seen := scrape(worker)) and seen[1] >= 8 and partitions <= set(seen[0])
                   and not any(seen[0].values())):
            assert time.monotonic() < deadline, f"worker never reported zero lag on {sorted(partitions)}: {seen}"
            await asyncio.sleep(0.2)

        worker.stop()  # stopped: the backlog waits in Kafka
        backlog = await produce_backlog(kafka, topic)
        starting = asyncio.create_task(asyncio.to_thread(worker.start))
        peak, caught_up, deadline = 0.0, None, time.monotonic() + 120
        while caught_up is None:
            assert time.monotonic() < deadline, f"never caught up: peak lag {peak}, last scrape {seen}"
            await asyncio.sleep(0.1)
            if (seen := scrape(worker)) is None:
                continue
            lags, judged = seen
            peak = max(peak, sum(lags.values()))
            if judged >= backlog and partitions <= set(lags) and not any(lags.values()):
                caught_up = lags
        await starting
        assert peak > 0, "the backlog never showed as lag"
        assert peak <= backlog, f"lag {peak} is more than the {backlog} readings produced while stopped"
        # Every readings partition the worker owns is reported (traffic's four among them), and only those.
        assert {(t, p) for t, p in caught_up if t == topic} == partitions
        assert all(t.startswith(kafka_topics + "citystream.readings.") for t, _ in caught_up)
    finally:
        worker.stop()
