"""Wire helpers of the worker: JSON values, standard headers, and rejected-reading records for bad input."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pydantic import BaseModel, ValidationError

from schemas.headers import make_headers
from schemas.rejections import RejectedReading, RejectionReason
from services.common import jsonwire
from services.common.settings import CommonSettings

PRODUCER = "anomaly"


def dumps(model: BaseModel) -> bytes:
    return jsonwire.dumps(model)


def headers(schema: str, event_id: str | None, settings: CommonSettings, _model: BaseModel | None = None):
    return make_headers(schema, settings.instance_id or PRODUCER, event_id)


def rejection(raw: bytes | None, problem: Exception, domain: str) -> RejectedReading:
    """A MALFORMED rejection naming the field at fault, with the payload as received (JSON if it parses)."""
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
        event_id=str(uuid.uuid4()), sensor_id=sensor_id if isinstance(sensor_id, str) else None, seq=seq,
        reason=RejectionReason.MALFORMED, detail=f"{domain} reading invalid: {detail}"[:2000], field=field,
        source="anomaly", received_at=datetime.now(UTC), payload=payload,
    )
