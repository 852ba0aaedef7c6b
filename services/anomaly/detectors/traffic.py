"""Traffic detectors (TrafficFlowObserved): congestion and incident."""

from __future__ import annotations

import math

from schemas.alerts import AlertKind
from schemas.common import Severity
from services.anomaly.detectors.base import Detector, Judgement, Obs, Profile, Verdict, View, escalate

SPEED, OCCUPANCY, INTENSITY = "averageVehicleSpeed", "occupancy", "intensity"


class Congestion(Detector):
    """Speed well below its seasonal baseline while the loop is highly occupied. Score = fractional speed drop."""

    id = "traffic.congestion"
    version = "1.1.0"  # 1.1.0: not while the flow has stopped (an incident)
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
        flow = views.get(INTENSITY)
        stopped = flow is not None and flow.short and obs.metrics.get(INTENSITY, 1.0) <= Incident.STOPPED_SHARE * \
            flow.short
        if stopped:
            drop = min(drop, 0.0)  # no vehicles pass: a blocked road (incident), not a slow queue
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


def poisson_at_most(count: float, mean: float) -> float:
    """P(X ≤ count) for X ~ Poisson(mean): how often chance alone gives a count this low."""
    term = total = math.exp(-mean)
    for k in range(1, int(count) + 1):
        term *= mean / k
        total += term
    return total


class Incident(Detector):
    """Traffic stops: intensity collapses against the recent flow, or the speed collapses while no traffic passes
    (a blocked road: few or no vehicles, crawling speed; a congestion keeps its flow). Stays open until flow
    recovers. Score = the larger of the two drops."""

    id = "traffic.incident"
    # 1.1.0: the flow floor is in vehicles per hour (intensity counts vehicles per reporting interval, so 5 per
    # reading meant 60/h at 5 minutes but 1,200/h at 15 s); a speed collapse with stopped flow is an incident too.
    # 1.2.0: a fall of the count alone must also be unlikely as chance for a count (MAX_CHANCE).
    version = "1.2.0"
    kind = AlertKind.INCIDENT
    severity = Severity.HIGH
    default_threshold = 0.7  # intensity (or speed) fell by at least 70 %
    clear_fraction = 0.5
    metrics = (INTENSITY, SPEED)
    MIN_SIGMAS = 3.0
    MIN_FLOW_VPH = 60.0  # below this the road is just quiet: a "collapse" of 3 to 0 cars means nothing
    MIN_COUNT = 5.0  # vehicles per reading for a fall of the count alone to mean something
    STOPPED_SHARE = 0.2  # flow at most this share of the recent flow counts as stopped
    # Vehicles passing a loop arrive about at random (Poisson): at 5.5 per reading a count of 1 or less comes
    # about once in 40 readings, i.e. every 10 minutes on a quiet road at 15 s readings. A fall of the count alone
    # is an incident only when a count that low is rarer than this at the recent flow.
    MAX_CHANCE = 1e-3

    def observe(self, st: dict, obs: Obs, views: dict[str, View], profile: Profile) -> Judgement | None:
        v = views.get(INTENSITY)
        if v is None or v.short is None:
            return None
        ref = st.get("ref")
        if ref is None:
            interval = profile.interval_s or (obs.t - v.prev_t if v.prev_t is not None and obs.t > v.prev_t
                                              else None)
            # Only a sudden fall counts: compare with the fast EWMA of the flow just before.
            if interval is None or v.short * 3600.0 / interval < self.MIN_FLOW_VPH or v.expected is None:
                return 0.0, (v, None)
            drop = 1.0 - v.value / v.short
            # ...and it must also be far below what this hour usually carries, not just noise on a quiet road; a
            # count of a few vehicles per reading falls to zero by chance (Poisson: e^-5 < 1 % at 5 per reading).
            if drop >= self.threshold and ((v.expected - v.value) < self.MIN_SIGMAS * v.sigma
                                           or v.short < self.MIN_COUNT
                                           or poisson_at_most(v.value, v.short) > self.MAX_CHANCE):
                drop = min(drop, self.threshold * 0.99)
            speed = views.get(SPEED)
            if (drop < self.threshold and speed is not None and speed.expected and speed.expected > 0
                    and v.value <= self.STOPPED_SHARE * v.short):
                stalled = 1.0 - speed.value / speed.expected  # counting few or no cars, and those crawl
                if stalled > drop:
                    drop = stalled
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
        speed = obs.metrics.get(SPEED)
        cited = ((obs.seq, obs.t, INTENSITY, v.value),) + (((obs.seq, obs.t, SPEED, speed),) if speed is not None
                                                           else ())
        return self.verdict(
            INTENSITY, v.value, flow, drop,
            f"traffic stopped: intensity {v.value:.0f} against a recent flow of {flow:.1f}"
            + (f", speed {speed:.0f} km/h" if speed is not None else ""),
            cited, escalate(self.severity, 1) if drop >= 0.95 else None,
        )
