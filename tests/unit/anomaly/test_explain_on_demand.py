"""The engine explains a judgement (builds its Verdict) only when the lifecycle needs it, and that changes nothing:
the same alerts and the same state as explaining every judgement, which is what replay asks for."""

from __future__ import annotations

import pytest

from services.anomaly.detectors import Obs, Profile
from services.anomaly.detectors.waste import Overflow
from services.anomaly.engine import Engine
from services.anomaly.lifecycle import LifecycleConfig
from services.anomaly.scenarios import generate

DECLARED = {"traffic": {"intensity": (0, 150), "averageVehicleSpeed": (0, 60), "occupancy": (0, 1)},
            "energy": {"activePower": (0, 50), "voltage": (200, 260)},
            "waste": {"fillingLevel": (0, 1), "temperature": (-30, 45)}}


def _judge(scenario, profile, explain_all):
    engine = Engine(scenario.domain, with_rollups=False)
    state, events, verdicts = engine.new_state(), [], 0
    for obs in scenario.readings:
        outcome = engine.observe(state, obs, profile, explain_all=explain_all)
        events += [event.model_dump(mode="json") for event in outcome.events]
        verdicts += len(outcome.verdicts)
    return events, state, verdicts


@pytest.mark.parametrize("name", ["traffic_congestion", "energy_spike", "waste_fire", "waste_overflow"])
@pytest.mark.parametrize("declared", [False, True], ids=["no-profile", "declared-ranges"])
def test_explaining_only_what_the_lifecycle_needs_gives_the_same_alerts_and_state(name, declared):
    scenario = generate(name)
    profile = Profile(ranges=DECLARED[scenario.domain], interval_s=300) if declared else Profile()
    lazy_events, lazy_state, lazy_verdicts = _judge(scenario, profile, explain_all=False)
    full_events, full_state, full_verdicts = _judge(scenario, profile, explain_all=True)
    assert any(event["event_type"] == "opened" for event in lazy_events), "the scenario must open an alert"
    assert lazy_events == full_events
    assert lazy_state == full_state
    assert lazy_verdicts == 0, "without explain_all no verdict is handed back"
    assert full_verdicts >= len(scenario.readings) * 3, "replay sees every detector's verdict of every reading"


class CountingOverflow(Overflow):
    explained: list[float]

    def explain(self, obs, score, context):
        self.explained.append(score)
        return super().explain(obs, score, context)


def test_a_normal_reading_with_no_alert_open_is_never_explained():
    engine = Engine("waste", with_rollups=False, lifecycle_config=LifecycleConfig(resolve_after_s=0.0))
    counting = CountingOverflow()
    counting.explained = []
    engine.detectors = [counting]
    state = engine.new_state()
    levels = [0.2, 0.3, 0.95, 0.96, 0.5, 0.4, 0.3]  # normal, normal, over (opens), over, normal (resolves), normal
    for seq, level in enumerate(levels):
        engine.observe(state, Obs("bin-1", seq, 1e9 + seq * 300, {"fillingLevel": level}), Profile())
    # Explained: the two readings over the threshold, and the first normal one (its alert was open: it resolves).
    assert counting.explained == [0.95, 0.96, 0.5]
    assert state["lc"]["open"] == {}
