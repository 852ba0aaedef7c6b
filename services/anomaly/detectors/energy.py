"""Energy detectors (ACMeasurement activePower): consumption spike, outage, sustained drift."""

from __future__ import annotations

from schemas.alerts import AlertKind
from schemas.common import Severity
from services.anomaly.detectors.base import Detector, Judgement, Obs, Profile, Verdict, View, escalate

POWER = "activePower"


class Spike(Detector):
    """activePower far above its seasonal baseline (robust z, upward only, and at least 30 % above)."""

    id = "energy.spike"
    version = "1.0.0"
    kind = AlertKind.ENERGY_SPIKE
    severity = Severity.MEDIUM
    default_threshold = 5.0
    clear_fraction = 0.5
    metrics = (POWER,)

    def observe(self, st: dict, obs: Obs, views: dict[str, View], profile: Profile) -> Judgement | None:
        v = views.get(POWER)
        if v is None or v.expected is None:
            return None
        z = (v.value - v.expected) / v.sigma
        if v.value < 1.3 * v.expected:
            z = min(z, self.clear_below * 0.99)  # a small relative change is not a spike, however steady the load
        return z, v

    def explain(self, obs: Obs, z: float, v: View) -> Verdict:
        return self.verdict(
            POWER, v.value, v.expected, z,
            f"activePower {v.value:.4g} is {z:.1f} sigmas above the usual {v.expected:.4g} at this hour",
            ((obs.seq, obs.t, POWER, v.value),), escalate(self.severity, 1) if z >= 3 * self.threshold else None,
        )


class Outage(Detector):
    """activePower near zero where it normally is not. Score = 1 - observed / expected."""

    id = "energy.outage"
    version = "1.1.0"  # 1.1.0: the readings of an outage are not learned into the baselines (masks_learning)
    kind = AlertKind.ENERGY_OUTAGE
    severity = Severity.HIGH
    default_threshold = 0.95
    clear_fraction = 0.7
    metrics = (POWER,)
    masks_learning = True
    MIN_EXPECTED_KW = 0.5

    def observe(self, st: dict, obs: Obs, views: dict[str, View], profile: Profile) -> Judgement | None:
        v = views.get(POWER)
        if v is None or v.expected is None or v.expected < self.MIN_EXPECTED_KW:
            return None
        return max(0.0, 1.0 - max(v.value, 0.0) / v.expected), v

    def explain(self, obs: Obs, score: float, v: View) -> Verdict:
        return self.verdict(
            POWER, v.value, v.expected, score,
            f"activePower {v.value:.4g} where {v.expected:.4g} is usual at this hour: supply looks lost",
            ((obs.seq, obs.t, POWER, v.value),),
        )


class Drift(Detector):
    """Sustained drift: a slow EWMA of the clipped residual against the hour-of-week baseline, in sigmas."""

    id = "energy.drift"
    version = "1.1.0"  # 1.1.0: readings during an outage are neither judged nor learned
    kind = AlertKind.ENERGY_DRIFT
    severity = Severity.LOW
    default_threshold = 1.0
    clear_fraction = 0.5
    metrics = (POWER,)
    ALPHA = 0.02
    WARMUP = 100

    def observe(self, st: dict, obs: Obs, views: dict[str, View], profile: Profile) -> Judgement | None:
        v = views.get(POWER)
        if v is None or not v.weekly:  # drift is judged against a full week of history, never a fallback
            return None
        if v.expected >= Outage.MIN_EXPECTED_KW and v.value <= (1.0 - Outage.default_threshold) * v.expected:
            return None  # supply lost: the outage rule's business, and no evidence of a drift either way
        residual = max(-4.0, min(4.0, (v.value - v.expected) / v.sigma))
        level = (r := st.get("r", 0.0)) + self.ALPHA * (residual - r)
        n = st.get("n", 0) + 1
        st["r"], st["n"] = level, n
        if n < self.WARMUP:
            return None
        return abs(level), (v, level > 0)

    def explain(self, obs: Obs, score: float, context: tuple[View, bool]) -> Verdict:
        v, above = context
        side = "above" if above else "below"
        return self.verdict(
            POWER, v.value, v.expected, score,
            f"activePower has stayed {side} its baseline by {score:.1f} sigmas on average",
            ((obs.seq, obs.t, POWER, v.value),),
        )
