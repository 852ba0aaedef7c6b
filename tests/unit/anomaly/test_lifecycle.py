"""Alert lifecycle: one open alert per kind, hysteresis, auto-resolve, deterministic ids, operator actions."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.alerts import AlertAction, AlertEventType, AlertStatus
from schemas.common import Severity
from services.anomaly.detectors.waste import Overflow
from services.anomaly.lifecycle import Lifecycle, LifecycleConfig, new_state
from services.anomaly.detectors import Obs, Profile

SENSOR = "waste-lc-0001"


def feed(levels, lc=None, life=None, start=1e9, step=300.0):
    """Run the overflow detector + lifecycle over fill levels; returns (events, state)."""
    life = life or Lifecycle(LifecycleConfig(resolve_after_s=900))
    lc = lc if lc is not None else new_state()
    detector, st, events = Overflow(), {}, []
    for i, level in enumerate(levels):
        t = start + i * step
        v = detector.judge(st, Obs(SENSOR, i, t, {"fillingLevel": level}), {}, Profile())
        event = life.judge(lc, SENSOR, "waste", v, i, t)
        if event is not None:
            events.append(event)
    return events, lc


def types(events):
    return [e.event_type for e in events]


def test_one_open_alert_per_kind_while_the_signal_stays_high():
    events, lc = feed([0.5, 0.92, 0.95, 0.93, 0.96])
    assert types(events) == [AlertEventType.OPENED]
    assert list(lc["open"]) == ["overflow"]


def test_hysteresis_a_value_hovering_at_the_threshold_does_not_flap():
    events, _ = feed([0.5, 0.91, 0.89, 0.91, 0.88, 0.90, 0.87, 0.91])
    assert types(events) == [AlertEventType.OPENED]


def test_auto_resolve_after_the_signal_is_normal_long_enough():
    events, lc = feed([0.95, 0.5, 0.5, 0.5, 0.5, 0.5])
    assert types(events) == [AlertEventType.OPENED, AlertEventType.RESOLVED]
    resolved = events[-1]
    assert resolved.status == AlertStatus.RESOLVED and resolved.alert_id == events[0].alert_id
    assert resolved.resolved_at is not None and lc["open"] == {}
    # a brief dip that comes back before the resolve time keeps the same alert open
    events, _ = feed([0.95, 0.5, 0.5, 0.95, 0.5, 0.5])
    assert types(events) == [AlertEventType.OPENED]


def test_severity_escalation_is_an_update():
    events, _ = feed([0.92, 0.99])
    assert types(events) == [AlertEventType.OPENED, AlertEventType.UPDATED]
    assert events[0].severity == Severity.MEDIUM and events[1].severity == Severity.HIGH


def test_reprocessing_the_same_readings_gives_the_same_ids():
    levels = [0.5, 0.95, 0.5, 0.5, 0.5, 0.5, 0.5, 0.97]
    first, _ = feed(levels)
    second, _ = feed(levels)
    assert [(e.alert_id, e.event_id) for e in first] == [(e.alert_id, e.event_id) for e in second]
    assert len({e.alert_id for e in first}) == 2 and len({e.event_id for e in first}) == len(first)


def action(alert_id, kind, action_id, **extra):
    return AlertAction(action_id=action_id, alert_id=alert_id, sensor_id=SENSOR, action=kind, actor="op-anna",
                       requested_at=datetime(2026, 1, 1, tzinfo=UTC), **extra)


def test_actions_change_state_and_are_idempotent_by_action_id():
    life = Lifecycle()
    events, lc = feed([0.95], life=life)
    alert = events[0].alert_id
    ack = life.apply_action(lc, "waste", action(alert, "acknowledge", "a-1"))
    assert [(e.event_type, e.status, e.actor) for e in ack] == [
        (AlertEventType.ACKNOWLEDGED, AlertStatus.ACKNOWLEDGED, "op-anna")]
    assert life.apply_action(lc, "waste", action(alert, "acknowledge", "a-1")) == []
    assigned = life.apply_action(lc, "waste", action(alert, "assign", "a-2", assignee="crew-7"))
    assert assigned[0].assignee == "crew-7" and assigned[0].status == AlertStatus.ACKNOWLEDGED
    comment = life.apply_action(lc, "waste", action(alert, "comment", "a-3", comment="truck on its way"))
    assert comment[0].comment == "truck on its way"
    assert life.apply_action(lc, "waste", action("no-such-alert", "acknowledge", "a-4")) == []


def test_operator_resolve_does_not_reopen_until_the_signal_was_normal():
    life = Lifecycle(LifecycleConfig(resolve_after_s=900))
    events, lc = feed([0.95], life=life)
    resolved = life.apply_action(lc, "waste", action(events[0].alert_id, "resolve", "r-1", comment="emptied"))
    assert resolved[0].status == AlertStatus.RESOLVED
    more, lc = feed([0.95, 0.96, 0.5, 0.95], lc=lc, life=life, start=2e9)
    assert types(more) == [AlertEventType.OPENED]
    assert more[0].alert_id != events[0].alert_id
