"""Kafka records the gate writes: admitted readings (`citystream.readings.<domain>.v1`) and rejections
(`citystream.readings.rejected.v1`), as key, JSON value and headers."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from schemas import headers
from schemas.topics import REJECTED_READINGS, readings_topic
from services.ingest.gate import Admitted, Rejected


@dataclass(frozen=True, slots=True)
class OutRecord:
    topic: str  # catalogue name, without the deployment prefix
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


def admitted_record(reading: Admitted, produced_by: str) -> OutRecord:
    topic = readings_topic(reading.domain)
    value = orjson.dumps({
        "sensor_id": reading.sensor_id,
        "seq": reading.seq,
        "observed_at": reading.observed_at.isoformat(),
        "received_at": reading.received_at.isoformat(),
        "register_version": reading.register_version,
        "domain": reading.domain.value,
        "metrics": reading.metrics,
    })
    return OutRecord(topic, reading.sensor_id.encode(), value, headers.make_headers(topic, produced_by))


def rejected_record(rejection: Rejected, payload: Any, source: str, received_at: datetime,
                    produced_by: str, *, event_id: str | None = None) -> OutRecord:
    event_id = event_id or str(uuid.uuid4())
    value = orjson.dumps({
        "event_id": event_id,
        "sensor_id": rejection.sensor_id,
        "seq": rejection.seq,
        "reason": rejection.reason.value,
        "detail": rejection.detail,
        "field": rejection.field,
        "source": source,
        "received_at": received_at.isoformat(),
        "payload": _json_safe(payload),
    }, option=orjson.OPT_NON_STR_KEYS)
    key = rejection.sensor_id.encode() if rejection.sensor_id else None
    return OutRecord(REJECTED_READINGS, key, value,
                     headers.make_headers(REJECTED_READINGS, produced_by, event_id=event_id))


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
