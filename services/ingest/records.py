"""Kafka records the gate writes: admitted readings (`citystream.readings.<domain>.v1`) and rejections
(`citystream.readings.rejected.v1`), as key, JSON value and headers.

An admitted reading's `event-id` is `<sensor_id>:<seq>`: unique per reading (seq is the per-sensor idempotency key)
and the same when a client retries it, so consumers can deduplicate on it. Rejections keep a UUID (the
`rejections.event_id` column is a uuid).
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

import orjson

from schemas import headers
from schemas.common import Domain
from schemas.topics import REJECTED_READINGS, readings_topic
from services.ingest.gate import Admitted, Rejected
from services.ingest.reading_shape import printable


class OutRecord(NamedTuple):
    """Immutable; a NamedTuple because one is built per reading (a third of a frozen dataclass's cost)."""

    topic: str  # catalogue name, without the deployment prefix
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


def admitted_record(reading: Admitted, produced_by: str) -> OutRecord:
    topic, fixed_headers = _admitted_fixed(reading.domain, produced_by)
    sensor_id = reading.sensor_id
    value = orjson.dumps({
        "sensor_id": sensor_id,
        "seq": reading.seq,
        "observed_at": reading.observed_text,
        "received_at": reading.received_text,
        "register_version": reading.register_version,
        "domain": reading.domain,  # a str enum: orjson writes its value
        "metrics": reading.metrics,
    })
    event_id = f"{sensor_id}:{reading.seq}".encode()
    return OutRecord(topic, sensor_id.encode(), value, [*fixed_headers, (headers.EVENT_ID, event_id)])


@lru_cache(maxsize=64)
def _admitted_fixed(domain: Domain, produced_by: str) -> tuple[str, tuple[tuple[str, bytes], ...]]:
    """The topic and the headers every admitted reading of `domain` shares (all of make_headers but event-id)."""
    topic = readings_topic(domain)
    fixed = tuple(pair for pair in headers.make_headers(topic, produced_by, event_id="-")
                  if pair[0] != headers.EVENT_ID)
    return topic, fixed


def rejected_record(rejection: Rejected, payload: Any, source: str, received_at: datetime,
                    produced_by: str, *, event_id: str | None = None) -> OutRecord:
    event_id = event_id or str(uuid.uuid4())
    document = {
        "event_id": event_id,
        "sensor_id": rejection.sensor_id,
        "seq": rejection.seq,
        "reason": rejection.reason.value,
        "detail": rejection.detail,
        "field": rejection.field,
        "source": source,
        "received_at": received_at.isoformat(),
        "payload": _json_safe(payload),
    }
    try:
        value = orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # text orjson cannot write as UTF-8 (lone surrogates): escape it, never fail the batch
        value = orjson.dumps(printable_document(document), option=orjson.OPT_NON_STR_KEYS)
    key = rejection.sensor_id.encode() if rejection.sensor_id else None
    return OutRecord(REJECTED_READINGS, key, value,
                     headers.make_headers(REJECTED_READINGS, produced_by, event_id=event_id))


def printable_document(value: Any) -> Any:
    """`value` with every string (keys too) free of lone surrogates (written as backslash escapes)."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable_document(str(key)): printable_document(item) for key, item in value.items()}
    if isinstance(value, list):
        return [printable_document(item) for item in value]
    return value


def _json_safe(payload: Any) -> Any:
    """The payload as JSON can carry it: NaN/Infinity (valid Python floats, invalid JSON) become strings."""
    if isinstance(payload, float) and not math.isfinite(payload):
        return str(payload)
    if isinstance(payload, dict):
        return {str(key): _json_safe(value) for key, value in payload.items()}
    if isinstance(payload, list):
        return [_json_safe(value) for value in payload]
    if isinstance(payload, bytes):
        return payload.decode("utf-8", errors="replace")
    if isinstance(payload, int) and not isinstance(payload, bool) and abs(payload) >= 2**63:
        return str(payload)
    return payload
