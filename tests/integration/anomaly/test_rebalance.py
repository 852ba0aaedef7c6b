"""Two workers on four partitions: a second worker joins mid-stream and every sensor's state and alerts stay right."""

from __future__ import annotations

import asyncio
from collections import Counter

from schemas.topics import ALERTS, readings_topic
from tests.integration.anomaly.worker import Worker, consume_until, produce, reading

T0 = 1_767_600_000.0
SENSORS = [f"meter-rb-{i:03d}" for i in range(16)]
SPIKED = SENSORS[::2]  # half of the sensors get a spike before the rebalance


def power(i: int) -> float:
    return 20.0 + (i % 5) * 0.3


def opened(events: list[dict]) -> list[dict]:
    return [e for e in events if e["event_type"] == "opened" and e["sensor_id"] in SENSORS]


async def test_a_rebalance_keeps_every_sensors_state_and_alerts(kafka, kafka_topics, tmp_path,
                                                               anomaly_app_id):
    app_id = anomaly_app_id
    workers = [Worker(kafka, kafka_topics, app_id, tmp_path / f"worker{n}.log") for n in range(2)]
    energy, alerts = kafka_topics + readings_topic("energy"), kafka_topics + ALERTS
    try:
        workers[0].start()
        normal = [(s, reading(s, i, T0 + i * 300, "energy", activePower=power(i))) for i in range(40) for s in SENSORS]
        spikes = [(s, reading(s, 40, T0 + 40 * 300, "energy", activePower=95.0)) for s in SPIKED]
        await produce(kafka, energy, normal + spikes)
        before = await consume_until(kafka, alerts, lambda ev: len(opened(ev)) >= len(SPIKED))
        assert sorted(e["sensor_id"] for e in opened(before)) == sorted(SPIKED)

        # The second worker joins while readings keep flowing: partitions move, state must follow them.
        joining = asyncio.create_task(asyncio.to_thread(workers[1].start))
        for i in range(41, 56):
            await produce(kafka, energy,
                          [(s, reading(s, i, T0 + i * 300, "energy", activePower=power(i))) for s in SENSORS])
            await asyncio.sleep(0.3)
        await joining
        # Redelivered spikes must change nothing; a drop to zero is an outage only against a learned baseline,
        # so it fires at once only where the baseline came along with the partition.
        outage = [(s, reading(s, 56, T0 + 56 * 300, "energy", activePower=0.0)) for s in SENSORS]
        await produce(kafka, energy, spikes + outage)
        after = await consume_until(kafka, alerts,
                                    lambda ev: sum(e["kind"] == "energy_outage" for e in opened(ev)) >= len(SENSORS),
                                    timeout_s=60)
    finally:
        handled = [w.metric("citystream_anomaly_readings_total") if w.process and w.process.poll() is None else 0.0
                   for w in workers]
        for worker in workers:
            worker.stop()

    per_kind = Counter((e["sensor_id"], e["kind"]) for e in opened(after))
    assert {s for s, kind in per_kind if kind == "energy_outage"} == set(SENSORS), per_kind
    assert {s for s, kind in per_kind if kind == "energy_spike"} == set(SPIKED), per_kind
    assert set(per_kind.values()) == {1}, "one opening per (sensor, kind)"
    assert len({e["alert_id"] for e in opened(after)}) == len(opened(after))
    event_ids = [e["event_id"] for e in after if e["sensor_id"] in SENSORS]
    assert len(event_ids) == len(set(event_ids)), "no event twice"
    assert all(count > 0 for count in handled), f"both workers judged readings after the rebalance: {handled}"
