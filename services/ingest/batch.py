"""An HTTP batch through the gate, and the one status rule of `POST /v1/readings` (pure, no I/O).

Status rule:
- 200 every reading admitted (and acknowledged by Kafka);
- 207 some admitted, some rejected: the body's `outcomes` say which;
- every reading rejected for one reason: that reason's status from `schemas.rejections.HTTP_STATUS`
  (401 BAD_CREDENTIALS, 404 UNKNOWN_SENSOR, 403 SENSOR_NOT_ACTIVE / SENSOR_EXPIRED / SENSOR_MISMATCH,
  422 UNDECLARED_METRIC / OUT_OF_RANGE / TIMESTAMP_*, 400 MALFORMED, 429 RATE_LIMITED with Retry-After);
- every reading rejected, several reasons: 422 with the outcomes;
- request-level: 401 BAD_CREDENTIALS when the credential is valid for no sensor of the register (missing,
  unknown, wrong or expired): the readings are not looked at, the answer and the one dead letter carry their count;
  429 RATE_LIMITED with Retry-After when the client address sent too many such requests (nothing stored);
  400 MALFORMED (not JSON, no `readings` list, empty), 413 PAYLOAD_TOO_LARGE / BATCH_TOO_LARGE,
  503 with Retry-After when Kafka did not acknowledge in time or the register view is not ready.

`Prefer: return=minimal` (RFC 7240) keeps the status and the counts and lists only the rejected readings in
`outcomes` (each with its index): a gateway posting 1000-reading batches then reads a few lines instead of one
outcome per reading. The answer says so in `Preference-Applied`.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.rejections import HTTP_STATUS, RejectionReason
from services.ingest.credentials import CredentialCheck, PresentedCredential
from services.ingest.gate import Admitted, GateClock, GateLimits, RegisterLookup, Rejected, admit_at
from services.ingest.ratelimit import RateLimiter

Outcome = Admitted | Rejected


MINIMAL = "return=minimal"


@dataclass(frozen=True, slots=True)
class BatchAnswer:
    status: int
    retry_after_s: int | None
    body: dict[str, Any]
    preference_applied: str | None = None  # the `Preference-Applied` header, when a preference shaped the body


def prefers_minimal(prefer: str | None) -> bool:
    """Whether a `Prefer` header (RFC 7240: comma-separated preferences, optional `;` parameters, names
    case-insensitive, values optionally quoted) asks for `return=minimal`."""
    if not prefer:
        return False
    for preference in prefer.split(","):
        name, _, value = preference.split(";", 1)[0].partition("=")
        if name.strip().lower() == "return" and value.strip().strip('"').lower() == "minimal":
            return True
    return False


def gate_batch(readings: list[Any], credential: PresentedCredential | None, register: RegisterLookup,
               now: datetime, limits: GateLimits, limiter: RateLimiter, *, lenient_json: bool = False,
               ) -> list[Outcome]:
    """Every reading through `admit`; the batch's one credential is checked once per distinct stored hash.
    `lenient_json`: the body was parsed by the standard library (see `admit`)."""
    check = CredentialCheck(credential, now) if credential is not None else None
    clock = GateClock.of(now, limits)
    return [admit_at(raw, check, register, clock, limits, limiter, lenient_json=lenient_json) for raw in readings]


def authenticates(check: CredentialCheck | None, register: RegisterLookup) -> bool:
    """Whether the request's credential is valid for at least one sensor of the register. Only then are its
    readings looked at one by one (and their rejections stored): anonymous traffic is counted, never stored."""
    return check is not None and any(check.accepts(stored) for entry in register.sensors_for_key(check.key_id)
                                     for stored in entry.credentials_for(check.key_id))


def unauthenticated(readings: int | None) -> BatchAnswer:
    """401 for a whole request whose credential failed: one summary (`rejected` = readings sent, when countable)."""
    reason = RejectionReason.BAD_CREDENTIALS
    return BatchAnswer(HTTP_STATUS[reason], None, {
        "accepted": 0, "rejected": readings, "reason": reason.value, "field": "credential",
        "detail": "missing, unknown, wrong or expired credential: no reading of the request was looked at"})


def source_limited(retry_after_s: float) -> BatchAnswer:
    """429 for a client address that sent too many requests whose credential failed."""
    reason = RejectionReason.RATE_LIMITED
    return BatchAnswer(HTTP_STATUS[reason], max(1, math.ceil(retry_after_s)), {
        "reason": reason.value, "field": "credential",
        "detail": "too many requests with a failing credential from this address"})


def answer(outcomes: list[Outcome], *, minimal: bool = False) -> BatchAnswer:
    """Status, Retry-After and body for a gated batch whose admitted readings Kafka acknowledged; `minimal`: the
    outcomes list only the rejected readings (`Prefer: return=minimal`), the status is the same."""
    if minimal:
        items = [_rejected_item(index, outcome) for index, outcome in enumerate(outcomes)
                 if isinstance(outcome, Rejected)]
    else:
        items = [_item(index, outcome) for index, outcome in enumerate(outcomes)]
    rejected = [outcome for outcome in outcomes if isinstance(outcome, Rejected)]
    body = {"accepted": len(outcomes) - len(rejected), "rejected": len(rejected), "outcomes": items}
    applied = MINIMAL if minimal else None
    if not rejected:
        return BatchAnswer(200, None, body, applied)
    if len(rejected) < len(outcomes):
        return BatchAnswer(207, None, body, applied)
    reasons = Counter(outcome.reason for outcome in rejected)
    if len(reasons) > 1:
        return BatchAnswer(422, None, body, applied)
    reason = rejected[0].reason
    body["reason"] = reason.value
    retry_after = None
    if reason is RejectionReason.RATE_LIMITED:
        retry_after = max(1, math.ceil(max(outcome.retry_after_s or 1.0 for outcome in rejected)))
    return BatchAnswer(HTTP_STATUS[reason], retry_after, body, applied)


def request_error(reason: RejectionReason, detail: str, field: str | None = None) -> BatchAnswer:
    """A whole request refused before any reading was looked at."""
    return BatchAnswer(HTTP_STATUS[reason], None, {"reason": reason.value, "detail": detail, "field": field})


def _item(index: int, outcome: Outcome) -> dict[str, Any]:
    if isinstance(outcome, Admitted):
        return {"index": index, "status": "accepted", "sensor_id": outcome.sensor_id, "seq": outcome.seq}
    return _rejected_item(index, outcome)


def _rejected_item(index: int, outcome: Rejected) -> dict[str, Any]:
    return {"index": index, "status": "rejected", "reason": outcome.reason.value, "field": outcome.field,
            "detail": outcome.detail, "sensor_id": outcome.sensor_id, "seq": outcome.seq}
