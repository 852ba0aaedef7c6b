"""Reading→alert latency: probe bins report an overflow through ingest HTTP while the platform is under load; the
time from the POST until the `opened` overflow alert appears on `citystream.alerts.v1` is the latency.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from citystream.bench.fleet import BenchFleet, key_of
from services.common.kafka import access_of
from services.common.settings import KafkaAccess


@dataclass
class ProbeResult:
    latencies_ms: list[float] = field(default_factory=list)  # of the probes whose alert came
    missing: int = 0  # probes admitted whose alert never came within the wait
    not_admitted: int = 0  # probes the ingest did not answer 200 (not timed)
    wait_s: float = 0.0  # every missing probe was waited for at least this long
    accepted_keys: set[int] = field(default_factory=set)  # (probe, seq) keys acknowledged, for the books


UNAVAILABLE_RETRY_S = 30.0  # a probe answered 503 is sent again after its Retry-After, as a sensor would, this long


async def _post(client: httpx.AsyncClient, fleet: BenchFleet, index: int, seq: int, level: float,
                sent: Callable[[], None] = lambda: None) -> int:
    """Posts one reading; a 503 (Kafka unreachable, min ISR not met) is sent again after its Retry-After for up to
    UNAVAILABLE_RETRY_S, the same seq each time. `sent()` is called before each attempt (the latency's start)."""
    reading = {"sensor_id": fleet.sensor_ids[index], "seq": seq,
               "observed_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
               "metrics": {**fleet.variants[index][0], "fillingLevel": level}}
    deadline = time.monotonic() + UNAVAILABLE_RETRY_S
    while True:
        sent()
        response = await client.post("/v1/readings", content=orjson.dumps({"readings": [reading]}),
                                     headers={"Authorization": f"Bearer {fleet.credentials[index]}",
                                              "Content-Type": "application/json"})
        if response.status_code != 503 or time.monotonic() > deadline:
            return response.status_code
        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))


async def alert_latency(bootstrap: KafkaAccess | str, alerts_topic: str, ingest_url: str, probes: BenchFleet, *,
                        spacing_s: float, settle_s: float = 20.0) -> ProbeResult:
    """One overflow per probe bin, `spacing_s` apart; latencies of the alerts that came within `settle_s` after
    the last probe, and how many never came (missing: their latency is only known to exceed the wait)."""
    consumer = AIOKafkaConsumer(**access_of(bootstrap).client_options(), enable_auto_commit=False)
    await consumer.start()
    sent_at: dict[str, float] = {}
    latencies: dict[str, float] = {}
    result = ProbeResult(wait_s=settle_s)
    try:
        partitions = [TopicPartition(alerts_topic, p) for p in sorted(consumer.partitions_for_topic(alerts_topic)
                                                                      or await _partitions(consumer, alerts_topic))]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:
            await consumer.position(tp)  # resolve the end offset now, before any probe is sent
        stop = asyncio.Event()

        async def watch() -> None:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=200)
                arrived = time.perf_counter()
                for records in batch.values():
                    for record in records:
                        event = orjson.loads(record.value)
                        sensor = event.get("sensor_id")
                        if event.get("event_type") == "opened" and event.get("kind") == "overflow" \
                                and sensor in sent_at and sensor not in latencies:
                            latencies[sensor] = (arrived - sent_at[sensor]) * 1000

        watcher = asyncio.create_task(watch())
        async with httpx.AsyncClient(base_url=ingest_url, timeout=30.0) as client:
            for index in range(len(probes.sensor_ids)):  # a normal reading first: the detector knows the bin
                if await _post(client, probes, index, 1, 0.3) == 200:
                    result.accepted_keys.add(key_of(index, 1))
            for index, sensor in enumerate(probes.sensor_ids):
                status = await _post(client, probes, index, 2, 0.97,
                                     sent=lambda sensor=sensor: sent_at.__setitem__(sensor, time.perf_counter()))
                if status != 200:
                    del sent_at[sensor]
                    result.not_admitted += 1
                else:
                    result.accepted_keys.add(key_of(index, 2))
                await asyncio.sleep(spacing_s)
        deadline = time.monotonic() + settle_s
        while len(latencies) < len(sent_at) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        stop.set()
        await watcher
    finally:
        await consumer.stop()
    result.latencies_ms = list(latencies.values())
    result.missing = len(sent_at) - len(latencies)
    return result


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    cluster = await consumer._client.fetch_all_metadata()  # group-less consumers get no metadata otherwise
    return cluster.partitions_for_topic(topic) or {0}
