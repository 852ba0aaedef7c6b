"""Rollups from the anomaly worker on `citystream.rollups.1m.v1` land in `rollups_1m` through the real ingest sink,
and the worker's rejection of a poison record lands in `rejections` (the sink dead-letters that record on its own
too, with source 'sink')."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg

from schemas.topics import readings_topic
from services.anomaly import rollups
from services.ingest.settings import IngestSettings
from services.ingest.sink_worker import SinkWorker
from tests.integration.anomaly.worker import Worker, produce, reading

T0 = 1_767_600_000.0  # a minute boundary


async def wait_rows(database_url: str, query: str, arg: str, count: int, timeout_s: float = 60) -> list:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        connection = await asyncpg.connect(database_url)
        try:
            rows = await connection.fetch(query, arg)
        finally:
            await connection.close()
        if len(rows) >= count or loop.time() > deadline:
            return rows
        await asyncio.sleep(0.5)


async def test_worker_rollups_are_stored_by_the_sink(settings, tmp_path, anomaly_app_id):
    sensor = f"meter-roll-{uuid.uuid4().hex[:6]}"
    readings = [reading(sensor, i, T0 + i * 20, "energy", activePower=10.0 + i, voltage=230.0 - i) for i in range(9)]
    # What the worker should publish: the pure rollups of the same readings, every window closed (the timer
    # flushes the last one, its minute being long past in wall-clock time).
    state: dict = {}
    expected = []
    for r in readings:
        t = datetime.fromisoformat(r["observed_at"]).timestamp()
        expected += rollups.add(state, sensor, "energy", t, r["metrics"])
    expected += rollups.flush(state, sensor, "energy", float("inf"))
    want = sorted((e.metric, e.window_start, e.count, e.min, e.max, e.mean, e.last) for e in expected)
    assert len(want) == 6  # 3 minutes x 2 metrics

    worker = Worker(settings.kafka, settings.topic_prefix, anomaly_app_id,
                    tmp_path / "worker.log").start()
    sink = SinkWorker(IngestSettings(kafka_bootstrap=settings.kafka_bootstrap, database_url=settings.database_url,
                                     topic_prefix=settings.topic_prefix, instance_id=settings.instance_id))
    sink_task = asyncio.create_task(sink.run())
    try:
        poison = b'{"sensor_id": "%s", "seq": 99, "metrics": "nope"}' % sensor.encode()
        await produce(settings.kafka, settings.topic(readings_topic("energy")),
                      [(sensor, poison)] + [(sensor, r) for r in readings])
        rows = await wait_rows(settings.database_url, "SELECT metric, window_start, count, min, max, mean, last,"
                               " domain FROM rollups_1m WHERE sensor_id = $1", sensor, len(want))
        got = sorted((r["metric"], r["window_start"], r["count"], r["min"], r["max"], r["mean"], r["last"])
                     for r in rows)
        assert got == want, worker.log_path.read_text()[-2000:]
        assert {r["domain"] for r in rows} == {"energy"}
        dead = await wait_rows(settings.database_url, "SELECT event_id, reason, source FROM rejections"
                               " WHERE sensor_id = $1 AND source = 'anomaly'", sensor, 1)
        assert [(r["reason"], r["source"]) for r in dead] == [("MALFORMED", "anomaly")]
    finally:
        sink.stopping.set()
        await asyncio.wait_for(sink_task, 30)
        worker.stop()
    assert datetime.fromtimestamp(T0, UTC) in {w for _, w, *_ in got}
