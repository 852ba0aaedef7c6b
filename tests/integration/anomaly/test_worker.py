"""The Faust worker against the real Kafka: readings in → alerts out, lifecycle, actions, kill -9 recovery."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from schemas.topics import ALERT_ACTIONS, ALERTS, REJECTED_READINGS, ROLLUPS_1M, readings_topic
from tests.integration.anomaly.worker import Worker, consume_until, produce, reading

T0 = 1_767_600_000.0  # reading time; detection runs on observed_at, so history replays deterministically


@pytest.fixture
def worker_factory(kafka_bootstrap, kafka_topics, tmp_path):
    app_id = f"test-anomaly-{uuid.uuid4().hex[:8]}"
    started: list[Worker] = []

    def make(**env: str) -> Worker:
        worker = Worker(kafka_bootstrap, kafka_topics, app_id, tmp_path / f"worker{len(started)}.log",
                        CITYSTREAM_ANOMALY_RESOLVE_AFTER_S="600", **env)
        started.append(worker)
        return worker

    yield make
    for worker in started:
        worker.stop()


def kinds(events, sensor):
    return [(e["kind"], e["event_type"]) for e in events if e["sensor_id"] == sensor]


async def test_readings_in_alerts_out_with_lifecycle_actions_and_dead_letters(kafka_bootstrap, kafka_topics,
                                                                              worker_factory):
    worker_factory().start()
    waste = kafka_topics + readings_topic("waste")
    levels = [0.5, 0.95, 0.96, 0.97, 0.5, 0.5, 0.5, 0.5]  # open once, stay open, recover, auto-resolve (600 s)
    records = [("bin-it-0001", reading("bin-it-0001", i, T0 + i * 300, "waste", fillingLevel=level))
               for i, level in enumerate(levels)]
    records += [("bin-it-0002", reading("bin-it-0002", 1, T0, "waste", fillingLevel=0.99))]
    records += [("bin-it-0003", b'{"sensor_id": "bin-it-0003", "seq": 1, "metrics": "nope"}')]
    await produce(kafka_bootstrap, waste, records)

    alerts = kafka_topics + ALERTS
    events = await consume_until(kafka_bootstrap, alerts, lambda ev: len(kinds(ev, "bin-it-0001")) >= 2
                                 and kinds(ev, "bin-it-0002"))
    assert kinds(events, "bin-it-0001") == [("overflow", "opened"), ("overflow", "resolved")]
    assert len({e["alert_id"] for e in events if e["sensor_id"] == "bin-it-0001"}) == 1
    assert events[-1]["status"] == "resolved" or any(e["status"] == "resolved" for e in events)
    opened = next(e for e in events if e["sensor_id"] == "bin-it-0002")
    assert opened["explanation"]["detector"] == "waste.overflow" and opened["severity"] == "high"

    rejected = await consume_until(kafka_bootstrap, kafka_topics + REJECTED_READINGS, lambda r: len(r) >= 1)
    assert rejected[0]["reason"] == "MALFORMED" and rejected[0]["sensor_id"] == "bin-it-0003"

    action = {"action_id": str(uuid.uuid4()), "alert_id": opened["alert_id"], "sensor_id": "bin-it-0002",
              "action": "acknowledge", "actor": "op-test", "requested_at": datetime.now(UTC).isoformat()}
    await produce(kafka_bootstrap, kafka_topics + ALERT_ACTIONS, [("bin-it-0002", action), ("bin-it-0002", action)])
    events = await consume_until(kafka_bootstrap, alerts, lambda ev: len(kinds(ev, "bin-it-0002")) >= 2)
    acks = [e for e in events if e["sensor_id"] == "bin-it-0002" and e["event_type"] == "acknowledged"]
    assert len(acks) == 1 and acks[0]["status"] == "acknowledged" and acks[0]["actor"] == "op-test"

    rollups = await consume_until(kafka_bootstrap, kafka_topics + ROLLUPS_1M,
                                  lambda r: sum(x["sensor_id"] == "bin-it-0001" for x in r) >= len(levels))
    mine = [r for r in rollups if r["sensor_id"] == "bin-it-0001"]
    assert [r["last"] for r in mine] == levels and all(r["count"] == 1 for r in mine)


async def test_kill_9_restart_keeps_baselines_and_never_duplicates_an_alert(kafka_bootstrap, kafka_topics,
                                                                          worker_factory):
    energy = kafka_topics + readings_topic("energy")
    sensor = "meter-it-0001"
    first = worker_factory().start()
    normal = [(sensor, reading(sensor, i, T0 + i * 300, "energy", activePower=20.0 + (i % 5) * 0.3))
              for i in range(40)]
    spike = [(sensor, reading(sensor, 40, T0 + 40 * 300, "energy", activePower=95.0))]
    await produce(kafka_bootstrap, energy, normal + spike)
    alerts = kafka_topics + ALERTS
    before = await consume_until(kafka_bootstrap, alerts, lambda ev: ("energy_spike", "opened") in kinds(ev, sensor))
    assert ("energy_spike", "opened") in kinds(before, sensor)
    first.kill9()

    worker_factory().start()  # same app id: recovers sensor_to_state from its changelog
    # Redelivered readings must not re-open anything. Then power drops to zero: an outage can only be judged
    # against a learned baseline, so it fires at once only if the baseline came back (fresh state = warm-up).
    outage = [(sensor, reading(sensor, 41, T0 + 41 * 300, "energy", activePower=0.0))]
    await produce(kafka_bootstrap, energy, normal[-3:] + spike + outage)
    after = await consume_until(kafka_bootstrap, alerts,
                                lambda ev: ("energy_outage", "opened") in kinds(ev, sensor), timeout_s=60)
    assert ("energy_outage", "opened") in kinds(after, sensor)
    opened = [e for e in after if e["sensor_id"] == sensor and e["event_type"] == "opened"]
    # One alert per (sensor, kind), and the spike kept its id across the crash.
    alert_ids_by_kind = {}
    for event in opened:
        alert_ids_by_kind.setdefault(event["kind"], set()).add(event["alert_id"])
    assert alert_ids_by_kind.keys() == {"energy_spike", "energy_outage"}
    assert all(len(ids) == 1 for ids in alert_ids_by_kind.values()), alert_ids_by_kind
    # At-least-once: a record processed before the kill but not yet committed may be emitted again after it.
    # That is a redelivery (same deterministic id, same content, absorbed by the sink's ON CONFLICT), never a
    # second, different event under one id.
    by_event_id = {}
    for event in after:
        by_event_id.setdefault(event["event_id"], []).append(event)
    assert all(all(copy == copies[0] for copy in copies) for copies in by_event_id.values())
