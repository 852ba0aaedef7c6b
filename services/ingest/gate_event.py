"""One raw record of `citystream.readings.raw.v1` through the gate: key = sensor id, `credential` header, JSON value
→ the record to produce (admitted reading or rejection) and its metric labels. Pure apart from the rate limiter."""

from __future__ import annotations

import json
from datetime import datetime

import orjson

from schemas import headers as wire_headers
from schemas.rejections import RejectionReason
from services.ingest import metrics
from services.ingest.credentials import CredentialChecks
from services.ingest.gate import Admitted, Rejected, admit
from services.ingest.records import OutRecord, admitted_record, rejected_record
from services.ingest.runtime import GateRuntime


def gate_event(runtime: GateRuntime, key: bytes | None, value: bytes | None, header_pairs,
               now: datetime, credentials: CredentialChecks | None = None,
               sent_at_s: float | None = None) -> tuple[OutRecord, tuple[str, str, str]]:
    """One raw record → the record to produce and its metric labels (outcome, reason, domain). Never raises on bad
    input. `credentials` (one per batch, same `now`) remembers the check of each credential text already seen;
    `sent_at_s` (the record's timestamp) is the rate limiter's clock."""
    produced_by = runtime.settings.produced_by
    hint = key.decode("utf-8", errors="replace") if key else None
    lenient = False
    try:
        raw = orjson.loads(value) if value is not None else None
    except orjson.JSONDecodeError:
        try:
            raw, lenient = json.loads(value), True  # NaN / Infinity: refused by the gate as OUT_OF_RANGE, not as MALFORMED
        except (ValueError, RecursionError) as problem:
            rejection = Rejected(RejectionReason.MALFORMED, f"value is not JSON: {problem}", None, hint)
            return rejected_record(rejection, value, "kafka", now, produced_by), ("rejected", "MALFORMED", "")
    credentials = credentials if credentials is not None else CredentialChecks(now)
    credential = credentials.of(wire_headers.header_value(header_pairs, wire_headers.CREDENTIAL))
    outcome = admit(raw, credential, runtime.view.state, now, runtime.limits, runtime.limiter, sensor_hint=hint,
                   lenient_json=lenient, sent_at_s=sent_at_s)
    labels = metrics.outcome_labels(outcome, runtime.view.state)
    if isinstance(outcome, Admitted):
        return admitted_record(outcome, produced_by), labels
    return rejected_record(outcome, raw, "kafka", now, produced_by), labels
