"""Runs an engine over a scenario the way the worker does: readings in order, a timer tick every interval."""

from __future__ import annotations

from schemas.alerts import AlertEvent, AlertEventType
from services.anomaly.detectors import Profile
from services.anomaly.engine import Engine
from services.anomaly.scenarios import Scenario


def run(scenario: Scenario, engine: Engine | None = None, profile: Profile = Profile()) -> list[AlertEvent]:
    engine = engine or Engine(scenario.domain, with_rollups=False)
    state = engine.new_state()
    events: list[AlertEvent] = []
    clock = scenario.readings[0].t
    for obs in scenario.readings:
        while clock + scenario.interval_s < obs.t:
            clock += scenario.interval_s
            events += engine.tick(state, obs.sensor_id, clock, profile).events
        clock = obs.t
        events += engine.observe(state, obs, profile).events
    return events


def opened(events: list[AlertEvent]) -> list[AlertEvent]:
    return [event for event in events if event.event_type == AlertEventType.OPENED]
