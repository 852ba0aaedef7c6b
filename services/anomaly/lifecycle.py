"""Alert lifecycle (pure): one open alert per (sensor, kind), hysteresis, auto-resolve, deterministic ids, actions.

State is a JSON-able dict `{"open": {kind: alert}, "acts": [recent action ids]}` kept in the sensor's table row.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.alerts import AlertAction, AlertActionType, AlertEvent, AlertEventType, AlertStatus, Explanation
from schemas.common import Severity
from services.anomaly.detectors.base import Verdict

log = logging.getLogger(__name__)

NAMESPACE = uuid.UUID("6f1c52a4-31c7-5b8e-9a54-0c1d7e0a5c11")
SEVERITY_RANK = {severity.value: rank for rank, severity in enumerate(Severity)}
RECENT_ACTIONS = 64


@dataclass(frozen=True, slots=True)
class LifecycleConfig:
    resolve_after_s: float = 600.0  # the signal must stay normal this long (reading time) before auto-resolve


def new_state() -> dict:
    return {"open": {}, "acts": []}


def alert_id(sensor_id: str, kind: str, seq: int, t: float) -> str:
    """Deterministic: the same opening reading always gives the same alert id."""
    return str(uuid.uuid5(NAMESPACE, f"alert|{sensor_id}|{kind}|{seq}|{t:.3f}"))


def event_id(alert: str, what: str, ref: object) -> str:
    return str(uuid.uuid5(NAMESPACE, f"event|{alert}|{what}|{ref}"))


def _at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _event(rec: dict, sensor_id: str, domain: str, kind: str, etype: AlertEventType, eid: str, t: float,
           explanation: Explanation | None = None, **extra) -> AlertEvent:
    return AlertEvent(
        event_id=eid, alert_id=rec["id"], event_type=etype, sensor_id=sensor_id, domain=domain, kind=kind,
        severity=rec["sev"], status=rec["status"], opened_at=_at(rec["opened"]), occurred_at=_at(t),
        explanation=explanation or Explanation.model_validate(rec["x"]), assignee=rec.get("assignee"), **extra,
    )


class Lifecycle:
    def __init__(self, config: LifecycleConfig = LifecycleConfig()) -> None:
        self.config = config

    def judge(self, lc: dict, sensor_id: str, domain: str, v: Verdict, seq: int, t: float,
              id_t: float | None = None) -> AlertEvent | None:
        """Apply one verdict (judged at `t`) to the alert of its kind; returns the event it causes, if any.

        The alert id derives from (sensor, kind, seq, id_t or t): the opening reading, so a re-run gives the same id.
        """
        kind = v.kind.value
        rec = lc["open"].get(kind)
        if rec is None or rec.get("muted"):
            if rec is not None and v.score < v.clear_below:
                del lc["open"][kind]  # an operator resolved it; the signal is normal again, so re-arm
                return None
            if rec is not None or not v.firing:
                return None
            explanation = v.explanation()
            rec = {"id": alert_id(sensor_id, kind, seq, t if id_t is None else id_t), "opened": t, "seq": seq, "sev": v.severity.value,
                   "status": AlertStatus.OPEN.value, "normal": None, "x": explanation.model_dump(mode="json")}
            lc["open"][kind] = rec
            return _event(rec, sensor_id, domain, kind, AlertEventType.OPENED, event_id(rec["id"], "opened", seq),
                          t, explanation)
        if v.firing:
            rec["normal"] = None
            if SEVERITY_RANK[v.severity.value] > SEVERITY_RANK[rec["sev"]]:
                explanation = v.explanation()
                rec["sev"], rec["x"] = v.severity.value, explanation.model_dump(mode="json")
                return _event(rec, sensor_id, domain, kind, AlertEventType.UPDATED,
                              event_id(rec["id"], "updated", seq), t, explanation)
            return None
        if v.score >= v.clear_below:  # hovering between the thresholds: neither worse nor recovered
            rec["normal"] = None
            return None
        if rec["normal"] is None:
            rec["normal"] = t
        if t - rec["normal"] < max(self.config.resolve_after_s, v.quiet_s):
            return None
        del lc["open"][kind]
        rec["status"] = AlertStatus.RESOLVED.value
        return _event(rec, sensor_id, domain, kind, AlertEventType.RESOLVED, event_id(rec["id"], "resolved", ""),
                      t, v.explanation(), resolved_at=_at(t), actor="auto")

    def apply_action(self, lc: dict, domain: str, action: AlertAction) -> list[AlertEvent]:
        """Apply an operator command; idempotent by `action_id`. Unknown or closed alerts are ignored (logged)."""
        if action.action_id in lc["acts"]:
            return []
        found = next(((kind, rec) for kind, rec in lc["open"].items()
                      if rec.get("id") == action.alert_id and not rec.get("muted")), None)
        if found is None:
            log.info("action %s on alert %s of %s ignored: no such open alert",
                     action.action_id, action.alert_id, action.sensor_id)
            return []
        lc["acts"] = (lc["acts"] + [action.action_id])[-RECENT_ACTIONS:]
        kind, rec = found
        t = action.requested_at.timestamp()
        eid = event_id(rec["id"], "action", action.action_id)
        if action.action == AlertActionType.ACKNOWLEDGE:
            rec["status"] = AlertStatus.ACKNOWLEDGED.value
            etype = AlertEventType.ACKNOWLEDGED
        elif action.action == AlertActionType.ASSIGN:
            rec["assignee"] = action.assignee
            etype = AlertEventType.ASSIGNED
        elif action.action == AlertActionType.COMMENT:
            etype = AlertEventType.COMMENTED
        else:
            rec["status"] = AlertStatus.RESOLVED.value
            event = _event(rec, action.sensor_id, domain, kind, AlertEventType.RESOLVED, eid, t,
                           actor=action.actor, comment=action.comment, resolved_at=_at(t))
            lc["open"][kind] = {"muted": True, "id": rec["id"]}  # no reopening until the signal is normal again
            return [event]
        return [_event(rec, action.sensor_id, domain, kind, etype, eid, t, actor=action.actor,
                       comment=action.comment)]
