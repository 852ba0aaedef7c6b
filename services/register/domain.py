"""Pure register rules: metric declarations per domain, the active window, lifecycle transitions. No I/O."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from schemas.common import METRICS_BY_DOMAIN, Domain
from schemas.register import MetricDeclaration, SensorStatus
from services.common.errors import PermanentError


class LegalGround(StrEnum):
    """The six lawful bases of GDPR Art. 6(1)."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    VITAL_INTERESTS = "vital_interests"
    PUBLIC_TASK = "public_task"
    LEGITIMATE_INTERESTS = "legitimate_interests"


class RegisterError(PermanentError):
    """A refused request: HTTP status, stable reason code, the field at fault and a sentence for humans."""

    def __init__(self, status_code: int, reason: str, field: str | None, detail: str,
                 retry_after_s: int | None = None) -> None:
        super().__init__(detail)
        self.status_code, self.reason, self.field, self.detail = status_code, reason, field, detail
        self.retry_after_s = retry_after_s  # sent as Retry-After (429)


def invalid(field: str, detail: str, reason: str = "INVALID_FIELD") -> RegisterError:
    return RegisterError(422, reason, field, detail)


# Retired is final; suspended may come back; draft may be abandoned without ever publishing.
TRANSITIONS: dict[SensorStatus, frozenset[SensorStatus]] = {
    SensorStatus.DRAFT: frozenset({SensorStatus.ACTIVE, SensorStatus.RETIRED}),
    SensorStatus.ACTIVE: frozenset({SensorStatus.SUSPENDED, SensorStatus.RETIRED}),
    SensorStatus.SUSPENDED: frozenset({SensorStatus.ACTIVE, SensorStatus.RETIRED}),
    SensorStatus.RETIRED: frozenset(),
}


def check_transition(current: SensorStatus, target: SensorStatus) -> None:
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (retired is final)"
        raise RegisterError(409, "INVALID_TRANSITION", "status",
                            f"cannot go from {current} to {target}; allowed: {allowed}")


def check_metrics(domain: Domain, metrics: Sequence[MetricDeclaration]) -> None:
    """Every declared metric must be a Smart Data Models name of the sensor's domain, each at most once."""
    if not metrics:
        raise invalid("metrics", "declare at least one metric")
    valid = METRICS_BY_DOMAIN[domain]
    seen: set[str] = set()
    for index, metric in enumerate(metrics):
        if metric.name not in valid:
            raise invalid(f"metrics[{index}].name", f"metric {metric.name!r} is not valid for domain {domain}; "
                          f"valid: {', '.join(valid)}", "METRIC_NOT_VALID_FOR_DOMAIN")
        if metric.name in seen:
            raise invalid(f"metrics[{index}].name", f"metric {metric.name!r} is declared twice")
        seen.add(metric.name)


def check_window(active_from: datetime | None, active_until: datetime | None, now: datetime) -> None:
    if active_until is not None and active_until <= now:
        raise invalid("active_until", f"active_until {active_until.isoformat()} is in the past")
    if active_from is not None and active_until is not None and active_from >= active_until:
        raise invalid("active_from", "active_from must be before active_until")


def check_privacy(personal_data: bool, privacy_statement_url: str | None) -> None:
    if personal_data and not privacy_statement_url:
        raise invalid("privacy_statement_url", "a sensor that processes personal data needs a privacy statement")


def is_expired(active_until: datetime | None, now: datetime) -> bool:
    """Passing active_until expires a sensor by itself: no one has to act."""
    return active_until is not None and active_until <= now


def may_publish(status: SensorStatus, active_from: datetime | None, active_until: datetime | None,
                now: datetime) -> bool:
    """Only an active sensor inside its window may publish (the gates apply the same rule to the topic record)."""
    if status is not SensorStatus.ACTIVE or is_expired(active_until, now):
        return False
    return active_from is None or active_from <= now


def expires_within(active_until: datetime | None, now: datetime, days: float) -> bool:
    """True when active_until is still ahead but no further than `days` from now."""
    return active_until is not None and now < active_until <= now + timedelta(days=days)
