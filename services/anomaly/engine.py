"""Runs a sensor's detectors, lifecycle and rollups over one reading, a timer tick or an operator action (pure).

The Faust agents, `citystream replay` and `citystream eval` all call this same code. Per-sensor state is one
JSON-able dict (a Faust table value):
`{"seq": last seq seen, "m": {metric: baseline}, "d": {detector id: state}, "sil": {...}, "lc": {...}, "roll": {...}}`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.alerts import AlertAction, AlertEvent
from schemas.rollups import Rollup
from services.anomaly import lifecycle, rollups
from services.anomaly.detectors import Obs, Profile, Verdict, baseline_metrics, detector_set
from services.anomaly.detectors import baseline as baselines
from services.anomaly.detectors.generic import Silence
from services.anomaly.lifecycle import Lifecycle, LifecycleConfig


@dataclass(slots=True)
class Outcome:
    events: list[AlertEvent] = field(default_factory=list)
    rollups: list[Rollup] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    duplicate: bool = False


class Engine:
    """The full detector set of one domain (or the `generic` single-series set) with its alert lifecycle."""

    def __init__(self, domain: str, profile_name: str | None = None, *, metric: str = "value", scale: float = 1.0,
                 silence_k: float = 3.0, lifecycle_config: LifecycleConfig = LifecycleConfig(),
                 with_rollups: bool = True) -> None:
        self.domain = domain
        self.detectors = detector_set(profile_name or domain, metric, scale)
        self.metrics = baseline_metrics(self.detectors)
        self.silence = Silence(silence_k)
        self.lifecycle = Lifecycle(lifecycle_config)
        self.with_rollups = with_rollups

    @staticmethod
    def new_state() -> dict:
        return {"seq": -1, "m": {}, "d": {}, "sil": {}, "lc": lifecycle.new_state(), "roll": {}}

    def observe(self, state: dict, obs: Obs, profile: Profile, arrival: float | None = None) -> Outcome:
        """Judge one reading. A seq at or below the last one seen is a redelivery and changes nothing."""
        if obs.seq <= state["seq"]:
            return Outcome(duplicate=True)
        state["seq"] = obs.seq
        self.silence.seen(state["sil"], obs.t if arrival is None else arrival, obs.t)
        t, metrics, learned = obs.t, obs.metrics, state["m"]
        views = {}
        for metric in self.metrics:
            x = metrics.get(metric)
            if x is not None:
                ms = learned.get(metric)
                if ms is None:
                    ms = learned[metric] = baselines.new_state()
                views[metric] = baselines.view(ms, t, x)
        worst: dict[str, Verdict] = {}
        dstate = state["d"]
        for detector in self.detectors:
            st = dstate.get(detector.state_key)
            if st is None:
                st = dstate[detector.state_key] = {}
            v = detector.observe(st, obs, views, profile)
            if v is not None:
                kind = v.kind
                if kind not in worst or v.ratio > worst[kind].ratio:
                    worst[kind] = v
        for metric, v in views.items():
            baselines.learn(learned[metric], t, v.value, v)
        outcome = Outcome(verdicts=list(worst.values()))
        lc = state["lc"]
        if "silence" in lc["open"]:
            silence = self.silence.check(state["sil"], obs.t if arrival is None else arrival, profile, obs.seq)
            if silence is not None:
                outcome.verdicts.append(silence)
        for v in outcome.verdicts:
            event = self.lifecycle.judge(lc, obs.sensor_id, self.domain, v, obs.seq, t)
            if event is not None:
                outcome.events.append(event)
        if self.with_rollups:
            outcome.rollups = rollups.add(state["roll"], obs.sensor_id, self.domain, t, metrics)
        return outcome

    def tick(self, state: dict, sensor_id: str, now: float, profile: Profile) -> Outcome:
        """Timer work: silence (no reading for k usual intervals) and closing quiet rollup windows."""
        outcome = Outcome()
        v = self.silence.check(state["sil"], now, profile, state["seq"])
        if v is not None:
            outcome.verdicts.append(v)
            # Opening id keyed by the last reading seen, so a re-run timer yields the same silence alert.
            event = self.lifecycle.judge(state["lc"], sensor_id, self.domain, v, state["seq"], now,
                                         id_t=state["sil"]["last"])
            if event is not None:
                outcome.events.append(event)
        if self.with_rollups:
            outcome.rollups = rollups.flush(state["roll"], sensor_id, self.domain, now)
        return outcome

    def tick_due(self, state: dict, now: float, profile: Profile) -> bool:
        """Cheap pre-check for the timer: would `tick` have anything to do?"""
        sil = state["sil"]
        usual = self.silence.interval(sil, profile)
        if usual and sil.get("last") is not None and now - sil["last"] >= self.silence.threshold * usual \
                and "silence" not in state["lc"]["open"]:
            return True
        return any(w[0] + rollups.WINDOW_S + 10.0 <= now for w in state["roll"].values())

    def apply_action(self, state: dict, action: AlertAction) -> list[AlertEvent]:
        return self.lifecycle.apply_action(state["lc"], self.domain, action)
