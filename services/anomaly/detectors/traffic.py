"""Traffic detectors (TrafficFlowObserved): congestion and incident."""

from __future__ import annotations

from schemas.alerts import AlertKind
from schemas.common import Severity
from services.anomaly.detectors.base import Detector, Judgement, Obs, Profile, Verdict, View, escalate

SPEED, OCCUPANCY, INTENSITY = "averageVehicleSpeed", "occupancy", "intensity"


class Congestion(Detector):
    """Speed well below its seasonal baseline while the loop is highly occupied. Score = fractional speed drop."""

    id = "traffic.congestion"
    version = "1.0.0"
    kind = AlertKind.CONGESTION
    severity = Severity.MEDIUM
    default_threshold = 0.5  # speed at most half of the usual speed for this hour
    clear_fraction = 0.6
    metrics = (SPEED,)
    MIN_OCCUPANCY = 0.3

    def observe(self, st: dict, obs: Obs, views: dict[str, View], profile: Profile) -> Judgement | None:
        v = views.get(SPEED)
        occupancy = obs.metrics.get(OCCUPANCY)
        if v is None or v.expected is None or occupancy is None or v.expected <= 0:
            return None
        drop = 1.0 - v.value / v.expected
        return (drop if occupancy >= self.MIN_OCCUPANCY else min(drop, 0.0)), (v, occupancy)

    def explain(self, obs: Obs, score: float, context: tuple[View, float]) -> Verdict:
        v, occupancy = context
        return self.verdict(
            SPEED, v.value, v.expected, score,
            f"speed {v.value:.0f} km/h is {1.0 - v.value / v.expected:.0%} below the usual {v.expected:.0f} km/h"
            f" with occupancy {occupancy:.0%}",
            ((obs.seq, obs.t, SPEED, v.value), (obs.seq, obs.t, OCCUPANCY, occupancy)),
            Severity.HIGH if score >= 0.75 else None,
        )


class Incident(Detector):
    """A sudden collapse of intensity against the recent flow; stays open until flow recovers (score = drop)."""

    id = "traffic.incident"
    version = "1.0.0"
    kind = AlertKind.INCIDENT
    severity = Severity.HIGH
    default_threshold = 0.7  # intensity fell by at least 70 % from the recent flow
    clear_fraction = 0.5
    metrics = (INTENSITY,)
    MIN_SIGMAS = 3.0
    MIN_FLOW = 5.0  # below this the road is just quiet: a "collapse" of 3 to 0 cars means nothing

    def observe(self, st: dict, obs: Obs, views: dict[str, View], profile: Profile) -> Judgement | None:
        v = views.get(INTENSITY)
        if v is None or v.short is None:
            return None
        ref = st.get("ref")
        if ref is None:
            # Only a sudden fall counts: compare with the fast EWMA of the flow just before.
            if v.short < self.MIN_FLOW or v.expected is None:
                return 0.0, (v, None)
            drop = 1.0 - v.value / v.short
            # ...and it must also be far below what this hour usually carries, not just noise on a quiet road.
            if drop >= self.threshold and (v.expected - v.value) < self.MIN_SIGMAS * v.sigma:
                drop = min(drop, self.threshold * 0.99)
            if drop >= self.threshold:
                st["ref"], ref = v.short, v.short
        else:
            drop = 1.0 - v.value / ref
            if drop < self.clear_below:
                st.pop("ref", None)
        return drop, (v, ref or v.short)

    def explain(self, obs: Obs, drop: float, context: tuple[View, float | None]) -> Verdict:
        v, flow = context  # the flow the drop is measured from; None: too low to judge
        if flow is None:
            return self.verdict(INTENSITY, v.value, v.short, 0.0, "flow too low to judge", ())
        return self.verdict(
            INTENSITY, v.value, flow, drop,
            f"intensity collapsed to {v.value:.0f} from a recent flow of {flow:.0f}",
            ((obs.seq, obs.t, INTENSITY, v.value),), escalate(self.severity, 1) if drop >= 0.95 else None,
        )
