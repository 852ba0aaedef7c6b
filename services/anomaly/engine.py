"""Runs a sensor's detectors, lifecycle and rollups over one reading, a timer tick or an operator action (pure).

The Faust agents, `citystream replay` and `citystream eval` all call this same code. Per-sensor state is one
JSON-able dict: `{"seq": last seq seen, "m": {metric: hot baseline}, "b": {metric: seasonal baseline},
"d": {detector id: state}, "sil": {...}, "lc": {...}, "roll": {...}}`. The worker writes everything but "b" to its
hot table on every reading and "b" to the baseline table lazily (services/anomaly/state.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas.alerts import AlertAction, AlertEvent
from schemas.rollups import Rollup
from services.anomaly import lifecycle, rollups
from services.anomaly.detectors import Detector, Obs, Profile, Verdict, baseline_metrics, detector_set
from services.anomaly.detectors import baseline as baselines
from services.anomaly.detectors.generic import Silence
from services.anomaly.lifecycle import Lifecycle, LifecycleConfig


@dataclass(slots=True)
class Outcome:
    events: list[AlertEvent] = field(default_factory=list)
    rollups: list[Rollup] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)  # every judgement explained: only with `explain_all`
    duplicate: bool = False


# (score, threshold, detector, context) of the judgement of a kind that weighs most (highest score / threshold).
Judged = tuple[float, float, Detector, Any]


GENERIC_KINDS = ("anomalous_value", "rapid_change", "stuck_sensor")


def _let_the_specific_rule_speak(worst: dict[str, Judged], specific_open: bool) -> None:
    """One anomaly, one alert: when a domain rule (spike, outage, incident, fire risk, ...) fires on a reading, or
    its alert is still open, a generic verdict says the same thing less precisely, so it is dropped before the
    lifecycle sees it. An energy spike is also a rapid change of activePower, an outage also an anomalous voltage
    and its end a jump back; the operator gets the spike and the outage."""
    if not any(kind not in GENERIC_KINDS and score >= threshold
               for kind, (score, threshold, _, _) in worst.items()) and not specific_open:
        return
    for kind in GENERIC_KINDS:
        if (j := worst.get(kind)) is not None and j[0] >= j[1]:
            del worst[kind]


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

    @property
    def detectors(self) -> list:
        return self._detectors

    @detectors.setter
    def detectors(self, detectors: list) -> None:
        # Per reading the loop needs each detector's state key, alert kind (a StrEnum's `.value` is a Python
        # property call) and threshold: look them up once here, not once per detector per reading.
        self._detectors = detectors
        kinds = [d.kind for d in detectors]
        # `alone`: no other detector of the set declares this kind, so its judgement is the worst of its kind.
        self._plan = tuple((d, d.state_key, kind.value, d.threshold, kinds.count(kind) == 1,
                            kind.value in GENERIC_KINDS, d.masks_learning) for d, kind in zip(detectors, kinds))

    @staticmethod
    def new_state() -> dict:
        return {"seq": -1, "m": {}, "b": {}, "d": {}, "sil": {}, "lc": lifecycle.new_state(), "roll": {}}

    def observe(self, state: dict, obs: Obs, profile: Profile, arrival: float | None = None, *,
                explain_all: bool = False) -> Outcome:
        """Judge one reading. A seq at or below the last one seen is a redelivery and changes nothing.

        Only the judgements the lifecycle needs are explained (a Verdict); `explain_all` explains every one into
        `Outcome.verdicts`, as replay's per-reading scores need."""
        if obs.seq <= state["seq"]:
            return Outcome(duplicate=True)
        state["seq"] = obs.seq
        t, metrics, hots, seasonals = obs.t, obs.metrics, state["m"], state["b"]
        self.silence.seen(state["sil"], t if arrival is None else arrival, t)
        w, d = baselines.slots(t)
        views = {}
        learning = []
        for metric in self.metrics:
            x = metrics.get(metric)
            if x is not None:
                hot = hots.get(metric)
                if hot is None:
                    hot = hots[metric] = baselines.new_hot()
                seasonal = seasonals.get(metric)
                if seasonal is None:
                    seasonal = seasonals[metric] = baselines.new_seasonal()
                v = views[metric] = baselines.view_at(hot, seasonal, w, d, x)
                learning.append((metric, hot, seasonal, v, x))
        worst: dict[str, Judged] = {}  # kind → the judgement of that kind with the highest score / threshold
        dstate = state["d"]
        generic_firing, masked = False, ()
        for detector, key, kind, threshold, alone, generic, masks in self._plan:
            st = dstate.get(key)
            if st is None:
                st = dstate[key] = {}
            judged = detector.observe(st, obs, views, profile)
            if judged is not None:
                score, context = judged
                if generic and score >= threshold:
                    generic_firing = True
                if masks and score >= threshold:
                    masked = detector.metrics
                if not alone and (other := worst.get(kind)) is not None and (
                        score / threshold <= other[0] / other[1]):
                    continue
                worst[kind] = (score, threshold, detector, context)
        for metric, hot, seasonal, v, x in learning:
            if metric in masked:
                baselines.skip_at(hot, t, x)
            else:
                baselines.learn_at(hot, seasonal, w, d, t, x, v)
        outcome = Outcome()
        lc = state["lc"]
        opened = lc["open"]
        if generic_firing:  # the usual reading: nothing generic fires, nothing to weigh
            _let_the_specific_rule_speak(worst, any(kind not in GENERIC_KINDS for kind in opened))
        # Judging a verdict touches only the alert of its own kind, so silence (its alert open) is judged last.
        for kind, (score, threshold, detector, context) in worst.items():
            # A normal judgement of a kind with no alert (open or muted) changes nothing: the lifecycle is skipped,
            # and the explanation is never built.
            judge = score >= threshold or kind in opened
            if not (judge or explain_all):
                continue
            v = detector.explain(obs, score, context)
            if explain_all:
                outcome.verdicts.append(v)
            if judge:
                event = self.lifecycle.judge(lc, obs.sensor_id, self.domain, v, obs.seq, t)
                if event is not None:
                    outcome.events.append(event)
        if "silence" in opened:
            silence = self.silence.check(state["sil"], t if arrival is None else arrival, profile, obs.seq)
            if silence is not None:
                if explain_all:
                    outcome.verdicts.append(silence)
                event = self.lifecycle.judge(lc, obs.sensor_id, self.domain, silence, obs.seq, t)
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
            # Opening id keyed by the last reading seen (its seq and sensor-clock time, not its arrival), so the
            # same readings give the same silence alert id, re-run timer or replay alike.
            sil = state["sil"]
            event = self.lifecycle.judge(state["lc"], sensor_id, self.domain, v, state["seq"], now,
                                         id_t=sil.get("obs", sil["last"]))
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
