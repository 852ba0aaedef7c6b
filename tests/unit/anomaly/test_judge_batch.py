"""The worker's batch judge in memory: one sensor's failing detector neither stalls the partition nor hides the
readings after it; poison records become deterministic rejections (same record → same rejection); the plain
decode accepts exactly what the pydantic model accepts."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import orjson
import pytest
from pydantic import ValidationError

from schemas.alerts import AlertKind
from schemas.headers import EVENT_ID
from services.anomaly import app as worker
from services.anomaly import decode, metrics, wire
from services.anomaly.detectors import Detector
from services.anomaly.judge import Tally
from services.anomaly.outbox import Outbox
from services.anomaly.sensors import SensorStates
from tests.unit.anomaly.fakes import FakeGroup, FakeLog, FakeProducer, Record
from tests.unit.anomaly.memory_worker import MemoryWorker


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


@pytest.fixture
def memory_worker(monkeypatch):
    worker = MemoryWorker(FakeLog(), FakeGroup(set(), []), FakeProducer())
    engine = worker.engines["energy"]
    monkeypatch.setattr(engine, "detectors", [*engine.detectors, Exploding()])
    return worker


def judge(worker: MemoryWorker, domain: str, records: list[Record]) -> None:
    """One batch of one partition, judged and sent, its states written, as the loop does it."""
    async def batch() -> None:
        outbox, tally = Outbox(), Tally()
        worker.judge.readings(domain, records[0].topic, records[0].partition, records, outbox, time.time(), tally)
        tally.export()
        await outbox.send(worker.producer)
        worker.states.flush()

    asyncio.run(batch())


def errors(stage: str) -> float:
    return metrics.ERRORS.labels(stage)._value.get()


def readings(domain: str) -> float:
    return metrics.READINGS.labels(domain)._value.get()


def test_a_raising_detector_for_one_sensor_never_stalls_the_partition(memory_worker):
    topic = "readings.energy"
    values = [energy("meter-ok", i, 20.0 + (i % 5) * 0.3) for i in range(30)]
    batch = [(b"meter-ok", v) for v in values[:15]] + [(b"meter-bad", energy("meter-bad", 0, 20.0))]
    batch += [(b"meter-ok", v) for v in values[15:]] + [(b"meter-bad", energy("meter-bad", 1, 20.0))]
    batch += [(b"meter-ok", energy("meter-ok", 30, 95.0)), (b"meter-new", energy("meter-new", 0, 3.0))]
    records = [Record(topic, 0, offset, key, value) for offset, (key, value) in enumerate(batch)]
    before, judged = errors("reading"), readings("energy")

    judge(memory_worker, "energy", records)

    assert errors("reading") - before == 2, "each failing reading is counted in citystream_anomaly_errors_total"
    assert readings("energy") - judged == len(records) - 2, "the others are counted as judged"
    ok, new = memory_worker.states.load("meter-ok"), memory_worker.states.load("meter-new")
    assert ok["seq"] == 30 and new["seq"] == 0, "readings after the failure, of the same partition, were judged"
    alerts = [orjson.loads(value) for topic, _, key, value in memory_worker.producer.sent
              if topic == "alerts" and key == b"meter-ok"]
    assert [(a["kind"], a["event_type"]) for a in alerts if a["kind"] == "energy_spike"] == \
        [("energy_spike", "opened")], "the spike after the failures was still detected"


def test_a_poison_record_becomes_one_rejection_and_the_readings_after_it_are_judged(memory_worker):
    topic = "readings.energy"
    batch = [(b"meter-p", b'{"sensor_id": "meter-p", "seq": 1, "metrics": "nope"}'),
             (b"meter-x", b"\xff not json"), (b"meter-y", None),
             (b"meter-q", energy("meter-q", 0, 20.0))]
    records = [Record(topic, 2, 40 + i, key, value, timestamp=1_767_600_040_000 + i * 1000)
               for i, (key, value) in enumerate(batch)]
    judge(memory_worker, "energy", records)
    rejected = [orjson.loads(v) for t, _, _, v in memory_worker.producer.sent if t == "rejected"]
    assert [r["reason"] for r in rejected] == ["MALFORMED"] * 3 and rejected[0]["sensor_id"] == "meter-p"
    assert memory_worker.states.load("meter-q")["seq"] == 0
    again = wire.rejection(batch[0][1], ValueError("x"), "energy", topic, 2, 40, 1_767_600_040.0)
    assert rejected[0]["event_id"] == again.event_id, "the same record position gives the same id"
    assert datetime.fromisoformat(rejected[0]["received_at"]) == again.received_at, "received_at = record time"
    assert rejected[0]["field"] == "observed_at", "the model names the field at fault"


def test_rejection_ids_derive_from_the_record_position():
    def at(offset: int, partition: int = 0):
        return wire.rejection(b"{}", ValueError("bad"), "waste", "t", partition, offset, 1_767_600_000.0)

    assert at(7).event_id == at(7).event_id and at(7).received_at == at(7).received_at
    assert len({at(7).event_id, at(8).event_id, at(7, partition=1).event_id}) == 3


def test_a_rollup_is_identified_by_its_window_so_a_republished_window_keeps_its_event_id(memory_worker):
    # A reading every 300 s: each one closes the window of the one before it.
    records = [Record("readings.energy", 0, seq, b"meter-r", energy("meter-r", seq, 20.0)) for seq in range(3)]
    judge(memory_worker, "energy", records)
    sent = memory_worker.producer
    rollups = [(orjson.loads(value), headers[EVENT_ID].decode())
               for (topic, _, _, value), headers in zip(sent.sent, sent.headers, strict=True) if topic == "rollups"]
    assert [event_id for _, event_id in rollups] == \
        [f"meter-r:activePower:{1_767_600_000 - 1_767_600_000 % 60 + seq * 300}" for seq in range(2)]
    assert all(r["metric"] == "activePower" and r["count"] == 1 for r, _ in rollups)


def reading(**changes) -> dict:
    at = "2026-01-05T08:00:00+00:00"
    return {"sensor_id": "loop-1", "seq": 3, "observed_at": at, "received_at": at, "register_version": 1,
            "domain": "traffic", "metrics": {"intensity": 420, "occupancy": 0.12, "averageVehicleSpeed": None},
            **changes}


VARIANTS = [
    {}, {"metrics": {"intensity": 1.5, "unknownMetric": 3}}, {"metrics": {"intensity": "12"}},
    {"metrics": {"intensity": True}}, {"metrics": {}}, {"metrics": None}, {"metrics": "nope"},
    {"seq": -1}, {"seq": 2**63}, {"seq": 1.5}, {"seq": "4"}, {"seq": True},
    {"sensor_id": "Loop-1"}, {"sensor_id": "ab"}, {"sensor_id": None}, {"sensor_id": "loop-1\n"},
    {"observed_at": "2026-01-05T08:00:00"}, {"observed_at": "2026-01-05T08:00:00Z"},
    {"observed_at": "2026-01-05 08:00:00+01:00"}, {"observed_at": "2026-01-05"}, {"observed_at": 1767600000},
    {"observed_at": "2026-01-05T08:00:00.123456789+02:00"}, {"received_at": 5}, {"received_at": None},
    {"register_version": 0}, {"register_version": "1"}, {"domain": "energy"}, {"domain": None}, {"extra": [1]},
]


@pytest.mark.parametrize("changes", VARIANTS)
def test_the_plain_decode_accepts_exactly_what_the_model_accepts(changes):
    raw = orjson.dumps(reading(**changes))
    try:
        by_model = decode.checked(raw, "traffic")
    except (ValueError, ValidationError):
        by_model = None
    fast = decode.fast(raw, "traffic")
    assert fast is None or fast == by_model, "the plain check never accepts what the model refuses, nor differs"
    assert decode.fields(raw, "traffic") == by_model if by_model is not None else fast is None
    if not changes:
        assert fast is not None, "a plain admitted reading takes the fast path"


def test_the_plain_decode_does_not_parse_what_the_engine_does_not_read():
    """received_at is the gate's clock, validated by the gate against the same contract; the worker never reads
    it, so only its JSON type is checked on the fast path."""
    raw = orjson.dumps(reading(received_at="yesterday"))
    with pytest.raises(ValidationError):
        decode.checked(raw, "traffic")
    assert decode.fast(raw, "traffic") == decode.checked(orjson.dumps(reading()), "traffic")


def test_the_silence_scan_survives_a_state_it_cannot_use(memory_worker, monkeypatch):
    records = [Record("readings.energy", 0, seq, b"meter-quiet", energy("meter-quiet", seq, 20.0))
               for seq in range(5)]  # judged long ago: silent now
    judge(memory_worker, "energy", records)
    quiet = memory_worker.states.hot_table["meter-quiet"]
    stray = orjson.dumps({**orjson.loads(quiet), "dom": "parking"})  # a domain this worker has no engine for
    # Scanned in this order: the unusable ones first, so a scan that stopped at them would miss the quiet one.
    table = {"meter-damaged": b"\xff\x00", "meter-stray": stray, "meter-quiet": quiet}
    monkeypatch.setattr(worker, "sensor_to_state", table)
    monkeypatch.setattr(worker, "states", SensorStates(table, {}, lambda d: worker.engines[d].new_state()))
    before = errors("scan")

    outbox, producer = Outbox(), FakeProducer()
    worker.queue_due_ticks(time.time(), outbox)  # one scan, as the timer runs it
    asyncio.run(outbox.send(producer))

    ticks = [key for topic, _, key, _ in producer.sent if topic == worker.ticks_topic_name]
    assert ticks == [b"meter-quiet"]
    assert errors("scan") - before == 1  # the stray domain; the damaged record is skipped as absent
