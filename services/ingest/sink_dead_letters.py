"""Builds the `citystream.readings.rejected.v1` record for a record the sink cannot store (poison or refused row)."""

from __future__ import annotations

import uuid
from datetime import datetime

from schemas.rejections import RejectionReason
from services.ingest.gate import Rejected
from services.ingest.records import OutRecord, rejected_record


def where(record) -> str:
    """`topic[partition]@offset`: how logs and rejection details name a Kafka record."""
    return f"{record.topic}[{record.partition}]@{record.offset}"


def dead_letter_record(record, reason: str, now: datetime, produced_by: str) -> OutRecord:
    """A MALFORMED rejection carrying the record's raw value as a string.

    The payload stays a string (not re-parsed JSON) so the rejection itself is always storable, even when the
    database refused the original for its content (e.g. a `\\u0000` in jsonb): dead-lettering cannot loop.
    """
    location = where(record)
    sensor = record.key.decode("utf-8", errors="replace") if record.key else None
    detail = f"sink could not store {location}: {reason}".replace("\x00", "\\u0000")  # text columns refuse NUL
    rejection = Rejected(RejectionReason.MALFORMED, detail, None, sensor)
    # Deterministic id: a replay after a crash dead-letters the same event, stored once by the sink.
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"citystream-sink:{location}"))
    payload = None if record.value is None else record.value.decode("utf-8", errors="replace").replace("\x00", "")
    return rejected_record(rejection, payload, "sink", now, produced_by, event_id=event_id)
