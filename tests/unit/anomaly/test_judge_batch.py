"""The worker's batch loop in memory: one sensor's failing detector neither stalls the partition nor hides the
readings after it; poison records become deterministic rejections (same record → same rejection)."""

from __future__ import annotations

import asyncio
import time
import types
from datetime import UTC, datetime

import orjson
import pytest

from schemas.alerts import AlertKind
from services.anomaly import app as worker
from services.anomaly import metrics, wire
from services.anomaly.detectors import Detector
from services.anomaly.outbox import Outbox
from services.anomaly.sensors import SensorStates
from tests.unit.anomaly.test_outbox import FakeProducer


class FakeMessage:
    def __init__(self, topic: str, partition: int, offset: int, key: bytes, value: bytes) -> None:
        self.topic, self.partition, self.offset, self.key, self.value = topic, partition, offset, key, value
        self.timestamp = 1_767_600_000.0 + offset
        self.refs = 1

    def incref(self) -> None:
        self.refs += 1


class FakeEvent:
    def __init__(self, message: FakeMessage) -> None:
        self.message, self.acked = message, 0

    def ack(self) -> None:
        self.acked += 1


def energy(sensor: str, seq: int, power: float) -> bytes:
    at = datetime.fromtimestamp(1_767_600_000 + seq * 300, UTC).isoformat()
    return orjson.dumps({"sensor_id": sensor, "seq": seq, "observed_at": at, "received_at": at,
                         "register_version": 1, "domain": "energy", "metrics": {"activePower": power}})


class Exploding(Detector):
    """A detector that raises for one sensor only (the others judge as usual)."""

    id = "test.exploding"
    version = "0.0.0"
    kind = AlertKind.ANOMALOUS_VALUE
    default_threshold = 1.0

    def observe(self, st, obs, views, profile):
        if obs.sensor_id == "meter-bad":
            raise RuntimeError("detector bug")
        return None


@pytest.fixture
def memory_worker(monkeypatch):
    producer = FakeProducer()
    states = SensorStates({}, {}, lambda domain: worker.engines[domain].new_state())
    monkeypatch.setattr(worker, "states", states)
    monkeypatch.setattr(worker, "app", types.SimpleNamespace(producer=producer))
    monkeypatch.setattr(worker, "held", [])
    monkeypatch.setattr(worker, "last_flush", 0.0)  # flush (and ack) after every batch
    engine = worker.engines["energy"]
    monkeypatch.setattr(engine, "detectors", [*engine.detectors, Exploding()])
    return types.SimpleNamespace(producer=producer, states=states)


def errors(stage: str) -> float:
    return metrics.ERRORS.labels(stage)._value.get()


def test_a_raising_detector_for_one_sensor_never_stalls_the_partition(memory_worker):
    topic = "readings.energy"
    values = [energy("meter-ok", i, 20.0 + (i % 5) * 0.3) for i in range(30)]
    batch = [(b"meter-ok", v) for v in values[:15]] + [(b"meter-bad", energy("meter-bad", 0, 20.0))]
    batch += [(b"meter-ok", v) for v in values[15:]] + [(b"meter-bad", energy("meter-bad", 1, 20.0))]
    batch += [(b"meter-ok", energy("meter-ok", 30, 95.0)), (b"meter-new", energy("meter-new", 0, 3.0))]
    events = [FakeEvent(FakeMessage(topic, 0, offset, key, value)) for offset, (key, value) in enumerate(batch)]
    before = errors("reading")

    asyncio.run(worker.judge_batch("reading", events, lambda event, outbox: worker.judge_reading("energy", event,
                                                                                                 outbox)))

    assert errors("reading") - before == 2, "each failing reading is counted in citystream_anomaly_errors_total"
    assert all(event.acked == 1 for event in events), "every offset, the failing ones too, can be committed"
    ok, new = memory_worker.states.load("meter-ok"), memory_worker.states.load("meter-new")
    assert ok["seq"] == 30 and new["seq"] == 0, "readings after the failure, of the same partition, were judged"
    alerts = [orjson.loads(value) for topic, key, value in memory_worker.producer.sent
              if topic == worker.alerts_topic_name and key == b"meter-ok"]
    assert [(a["kind"], a["event_type"]) for a in alerts if a["kind"] == "energy_spike"] == \
        [("energy_spike", "opened")], "the spike after the failures was still detected"


def test_a_poison_record_becomes_one_rejection_and_the_readings_after_it_are_judged(memory_worker):
    topic = "readings.energy"
    batch = [(b"meter-p", b'{"sensor_id": "meter-p", "seq": 1, "metrics": "nope"}'),
             (b"meter-q", energy("meter-q", 0, 20.0))]
    events = [FakeEvent(FakeMessage(topic, 2, 40 + i, key, value)) for i, (key, value) in enumerate(batch)]
    asyncio.run(worker.judge_batch("reading", events, lambda event, outbox: worker.judge_reading("energy", event,
                                                                                                 outbox)))
    rejected = [orjson.loads(v) for t, _, v in memory_worker.producer.sent if t == worker.rejected_topic_name]
    assert len(rejected) == 1 and rejected[0]["sensor_id"] == "meter-p" and rejected[0]["reason"] == "MALFORMED"
    assert memory_worker.states.load("meter-q")["seq"] == 0
    again = wire.rejection(batch[0][1], ValueError("x"), "energy", topic, 2, 40, 1_767_600_040.0)
    assert rejected[0]["event_id"] == again.event_id, "the same record position gives the same id"
    assert datetime.fromisoformat(rejected[0]["received_at"]) == again.received_at, "received_at = record time"


def test_rejection_ids_derive_from_the_record_position():
    def at(offset: int, partition: int = 0):
        return wire.rejection(b"{}", ValueError("bad"), "waste", "t", partition, offset, 1_767_600_000.0)

    assert at(7).event_id == at(7).event_id and at(7).received_at == at(7).received_at
    assert len({at(7).event_id, at(8).event_id, at(7, partition=1).event_id}) == 3


def test_the_silence_scan_survives_a_state_it_cannot_use(memory_worker, monkeypatch):
    for seq in range(5):  # judged long ago: silent now
        event = FakeEvent(FakeMessage("readings.energy", 0, seq, b"meter-quiet", energy("meter-quiet", seq, 20.0)))
        asyncio.run(worker.judge_batch("reading", [event], lambda e, outbox: worker.judge_reading("energy", e,
                                                                                                  outbox)))
    quiet = memory_worker.states.hot_table["meter-quiet"]
    stray = orjson.dumps({**orjson.loads(quiet), "dom": "parking"})  # a domain this worker has no engine for
    # Scanned in this order: the unusable ones first, so a scan that stopped at them would miss the quiet one.
    table = {"meter-damaged": b"\xff\x00", "meter-stray": stray, "meter-quiet": quiet}
    monkeypatch.setattr(worker, "sensor_to_state", table)
    monkeypatch.setattr(worker, "states", SensorStates(table, {}, lambda d: worker.engines[d].new_state()))
    before = errors("scan")

    outbox = Outbox()
    worker.queue_due_ticks(time.time(), outbox)  # one scan, as the timer runs it
    asyncio.run(outbox.send(memory_worker.producer))

    ticks = [key for topic, key, _ in memory_worker.producer.sent if topic == worker.ticks_topic_name]
    assert ticks == [b"meter-quiet"]
    assert errors("scan") - before == 1  # the stray domain; the damaged record is skipped as absent
