"""Wire helpers of the worker: JSON values, standard headers, and rejected-reading records for bad input."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pydantic import BaseModel, ValidationError

from schemas.headers import make_headers
from schemas.rejections import RejectedReading, RejectionReason
from schemas.rollups import Rollup
from services.common import jsonwire
from services.common.settings import CommonSettings

PRODUCER = "anomaly"


def dumps(model: BaseModel) -> bytes:
    return jsonwire.dumps(model)


def headers(schema: str, event_id: str | None, settings: CommonSettings, _model: BaseModel | None = None):
    return make_headers(schema, settings.instance_id or PRODUCER, event_id)


def rollup_event_id(rollup: Rollup) -> str:
    """`<sensor_id>:<metric>:<window start, epoch s>`: the window's identity, as rollups_1m's key. A window published
    again (a redelivery after a restart, a late reading reopening it) carries the same id and is stored once."""
    return f"{rollup.sensor_id}:{rollup.metric}:{int(rollup.window_start.timestamp())}"


NAMESPACE = uuid.UUID("2b6c1f0e-6a57-5c1e-8d0b-4f1f3a9c7e21")


def rejection(raw: bytes | None, problem: Exception, domain: str, topic: str, partition: int, offset: int,
              timestamp_s: float | None) -> RejectedReading:
    """A MALFORMED rejection naming the field at fault, with the payload as received (JSON if it parses).

    Its event id derives from where the record sits (topic, partition, offset) and `received_at` is the record's
    Kafka timestamp, so a redelivered poison record yields the very same rejection and the sink (key event_id +
    received_at, ON CONFLICT DO NOTHING) stores it once."""
    field, detail = None, str(problem)
    if isinstance(problem, ValidationError) and problem.errors():
        first = problem.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        detail = f"{field}: {first['msg']}" if field else first["msg"]
    try:
        payload = jsonwire.loads(raw) if raw else None
    except ValueError:
        payload = (raw or b"").decode("utf-8", errors="replace")
    sensor_id = payload.get("sensor_id") if isinstance(payload, dict) else None
    seq = payload.get("seq") if isinstance(payload, dict) and isinstance(payload.get("seq"), int) else None
    return RejectedReading(
        event_id=str(uuid.uuid5(NAMESPACE, f"rejection|{topic}|{partition}|{offset}")), sensor_id=sensor_id if isinstance(sensor_id, str) else None, seq=seq,
        reason=RejectionReason.MALFORMED, detail=f"{domain} reading invalid: {detail}"[:2000], field=field,
        source="anomaly", payload=payload,
        received_at=datetime.fromtimestamp(timestamp_s, UTC) if timestamp_s is not None else datetime.now(UTC),
    )
