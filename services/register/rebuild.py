"""Rebuilds the register from `citystream.register.sensors.v1` alone: read to the end, keep each sensor's latest version.

`read_register` is what a gate does at start-up; `restore_database` refills empty register tables from it
(disaster recovery: the compacted topic is a complete copy of the register without secrets).
"""

from __future__ import annotations

import logging

import asyncpg
from pydantic import ValidationError

from schemas.register import SensorRegistration
from services.common import jsonwire
from services.common.compacted import topic_partitions
from services.common.errors import PermanentError
from services.common.kafka import make_consumer
from services.common.settings import KafkaAccess
from services.register import records
from services.register import repository as repo

log = logging.getLogger(__name__)


def apply_record(register: dict[str, SensorRegistration], key: bytes | None, value: bytes | None) -> None:
    """Fold one topic record into the register: tombstones delete; an older version never replaces a newer one."""
    if key is None:
        return
    sensor_id = key.decode()
    if value is None:
        register.pop(sensor_id, None)
        return
    record = SensorRegistration.model_validate(jsonwire.loads(value))
    current = register.get(sensor_id)
    if current is None or record.version >= current.version:
        register[sensor_id] = record


async def read_register(kafka: KafkaAccess, topic: str) -> dict[str, SensorRegistration]:
    """Every sensor on the topic, read from the beginning up to the end offsets seen at start."""
    consumer = make_consumer(kafka, None, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await topic_partitions(kafka, topic)
        if not partitions:
            return {}
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end_offsets = await consumer.end_offsets(partitions)
        register: dict[str, SensorRegistration] = {}
        while [tp for tp, end in end_offsets.items() if await consumer.position(tp) < end]:
            batches = await consumer.getmany(*partitions, timeout_ms=1000)
            for tp, messages in batches.items():
                for message in messages:
                    try:
                        apply_record(register, message.key, message.value)
                    except (ValueError, ValidationError):  # a poison record must not stop a rebuild
                        log.exception("skipping unreadable record %s[%d]@%d", tp.topic, tp.partition, message.offset)
        return register
    finally:
        await consumer.stop()


class IncompleteRecords(PermanentError):
    """Topic records lack declaration facts the register requires; nothing was restored."""

    def __init__(self, missing: dict[str, list[str]]) -> None:
        self.missing = missing
        listed = "; ".join(f"{sensor_id}: {', '.join(fields)}" for sensor_id, fields in sorted(missing.items()))
        super().__init__(f"{len(missing)} topic record(s) lack required details (details.<field>), "
                         f"nothing restored: {listed}")


async def restore_database(pool: asyncpg.Pool, register: dict[str, SensorRegistration]) -> int:
    """Write the rebuilt register into empty tables, credentials included; marks everything as published.

    All or nothing: a record without the details the register requires (e.g. no legal ground) raises
    IncompleteRecords naming every such sensor and field, before anything is written; no value is made up.
    """
    rows = {sensor_id: records.row_from_registration(record) for sensor_id, record in register.items()}
    missing = {sensor_id: fields for sensor_id, row in rows.items() if (fields := records.missing_details(row))}
    if missing:
        raise IncompleteRecords(missing)
    async with pool.acquire() as conn, conn.transaction():
        for record in register.values():
            row = rows[record.sensor_id]
            await repo.insert_sensor(conn, row)
            await conn.execute("UPDATE register_sensors SET published_version = version WHERE sensor_id = $1",
                               record.sensor_id)
            for credential in record.credentials:
                await repo.restore_credential(conn, key_id=credential.key_id, kind=credential.kind.value,
                                              secret_sha256=credential.secret_sha256, not_after=credential.not_after,
                                              organisation=record.owner_organisation, sensor_id=record.sensor_id)
            await repo.append_audit(conn, actor="system:rebuild", action="restore", sensor_id=record.sensor_id,
                                    before=None, after=records.audit_snapshot(row), at=record.updated_at)
    return len(register)
