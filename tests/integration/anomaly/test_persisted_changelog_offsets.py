"""The worker writes sensor states to the changelogs itself; its RocksDB stores then record the last changelog
offset they hold (services/anomaly/app.py ChangelogTables), so a restart recovers from there instead of replaying
every state written since the previous recovery. After a clean stop each store partition's recorded offset is the
last record of its changelog partition, and a restart on the same data directory restores nothing."""

from __future__ import annotations

from pathlib import Path

from aiokafka import TopicPartition
from rocksdict import AccessType, Options, Rdict

from schemas.topics import readings_topic
from services.common.kafka import make_consumer
from tests.integration.anomaly.worker import Worker, produce, reading, wait_committed

T0 = 1_767_600_000.0
TABLES = ("sensor_to_state", "sensor_to_baseline")
OFFSET_KEY = b"__faust\0offset__"  # where Faust's RocksDB store keeps a partition's persisted offset


def recorded_offsets(data_dir: Path, table: str) -> dict[int, int]:
    """Partition → offset recorded in the worker's RocksDB partition databases of `table` (read only)."""
    found = {}
    for path in data_dir.rglob(f"{table}-*.db"):
        db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            value = db.get(OFFSET_KEY)
        finally:
            db.close()
        if value is not None:
            found[int(path.name.removesuffix(".db").rsplit("-", 1)[1])] = int(value)
    return found


async def changelog_last_offsets(kafka, app_id: str, table: str) -> dict[int, int]:
    topic = f"{app_id}-{table}-changelog"
    consumer = make_consumer(kafka, None)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(4)])
    finally:
        await consumer.stop()
    return {tp.partition: end - 1 for tp, end in ends.items() if end > 0}


async def test_a_clean_restart_recovers_nothing_the_stores_already_hold(kafka, kafka_topics, tmp_path,
                                                                        anomaly_app_id):
    energy = kafka_topics + readings_topic("energy")
    worker = Worker(kafka, kafka_topics, anomaly_app_id, tmp_path / "worker.log")
    data_dir = tmp_path / "worker.data"
    meters = [f"meter-po-{i:02d}" for i in range(12)]
    history = [(m, reading(m, seq, T0 + seq * 300, "energy", activePower=50.0 + (seq % 7)))
               for seq in range(30) for m in meters]
    worker.start()
    try:
        await produce(kafka, energy, history)
        await wait_committed(kafka, anomaly_app_id, energy, len(history))
    finally:
        worker.stop()
    for table in TABLES:
        last = await changelog_last_offsets(kafka, anomaly_app_id, table)
        assert len(last) >= 2, f"{table}: the meters' states went to several changelog partitions"
        assert recorded_offsets(data_dir, table) == last, table

    restarted_log = tmp_path / "worker.log"
    before = restarted_log.read_text(errors="replace").count("Restoring state from changelog topics")
    worker.start()  # same data directory: the stores already hold every changelog record
    worker.stop()
    after = restarted_log.read_text(errors="replace").count("Restoring state from changelog topics")
    assert after == before, "the restarted worker replayed changelog records its stores already held"
