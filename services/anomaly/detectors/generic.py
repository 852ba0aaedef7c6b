"""Generic detectors for any metric: robust seasonal score, rate of change, flatline, physical range, silence."""

from __future__ import annotations

from schemas.alerts import AlertKind
from schemas.common import Severity
from services.anomaly.detectors.base import (
    Detector,
    Judgement,
    Obs,
    Profile,
    Verdict,
    View,
    counting_noise,
    escalate,
)

QUIET_S = 3600.0  # one anomaly of a statistical kind = one alert; it resolves after an hour back to normal


class MetricDetector(Detector):
    """A detector of one metric, named when it is built; its state key carries the metric. `counts`: the metric
    counts events (vehicles), so a change is never judged finer than its chance spread (counting_noise)."""

    def __init__(self, metric: str, threshold: float | None = None, *, counts: bool = False) -> None:
        super().__init__(threshold)
        self.metric, self.metrics = metric, (metric,)
        self.state_key = f"{self.id}/{metric}"
        self.counts = counts


class AnomalousValue(MetricDetector):
    """Robust z-score of a metric against its seasonal baseline (EWMA of mean and absolute deviation)."""

    id = "generic.anomalous_value"
    version = "1.0.0"
    kind = AlertKind.ANOMALOUS_VALUE
    severity = Severity.LOW
    default_threshold = 5.0
    clear_fraction = 0.6
    quiet_s = QUIET_S

    def observe(self, st: dict, obs: Obs, views: dict[str, View], profile: Profile) -> Judgement | None:
        v = views.get(self.metric)
        if v is None or v.expected is None:
            return None
        return abs(v.value - v.expected) / v.sigma, v

    def explain(self, obs: Obs, z: float, v: View) -> Verdict:
        metric = self.metric
        return self.verdict(
            metric, v.value, v.expected, z,
            f"{metric} {v.value:.4g} is {z:.1f} robust sigmas from its usual {v.expected:.4g} at this hour",
            ((obs.seq, obs.t, metric, v.value),), escalate(self.severity, 1) if z >= 2 * self.threshold else None,
        )


class RapidChange(MetricDetector):
    """A step between consecutive readings far larger than the metric's usual step (robust EWMA of |step|)."""

    id = "generic.rapid_change"
    # 1.1.0: a step is judged against the usual step plus a tenth of the range seen (42024d2); 1.2.0: a step of a
    # count against at least the chance spread of the difference of two counts (counting_noise × √2)
    version = "1.2.0"
    kind = AlertKind.RAPID_CHANGE
    severity = Severity.LOW
    default_threshold = 8.0
    clear_fraction = 0.5
    quiet_s = QUIET_S
    WARMUP = 12
    SPREAD_SHARE = 0.1  # a step is judged against the usual step and a tenth of the range seen so far

    def observe(self, st: dict, obs: Obs, views: dict[str, View], profile: Profile) -> Judgement | None:
        v = views.get(self.metric)
        if v is None or v.prev is None:
            return None
        prev, hi = v.prev, v.hi
        step = abs(v.value - prev)
        usual, n = st.get("u", 0.0), st.get("n", 0)
        spread = hi - v.lo if hi is not None else 0.0
        scale = usual * 1.2533 + 0.001 * abs(prev) + 1e-6 + self.SPREAD_SHARE * spread
        if self.counts and scale < (floor := 1.4142 * counting_noise(v.short)):
            scale = floor
        score = step / scale
        # Learn the usual step robustly: a huge step counts as at most 4 usual scales (min(step, 4 * scale)).
        counted = step
        if n:
            if 4 * scale < step:
                counted = 4 * scale
            alpha = 1.0 / (n + 1) if n < 19 else 0.05  # max(1 / (n + 1), 0.05): 1/20 == 0.05 exactly
        else:
            alpha = 1.0
        st["u"] = usual + alpha * (counted - usual)
        st["n"] = n + 1
        if n < self.WARMUP:
            return None
        return score, v

    def explain(self, obs: Obs, score: float, v: View) -> Verdict:
        metric = self.metric
        return self.verdict(
            metric, v.value, v.prev, score,
            f"{metric} jumped from {v.prev:.4g} to {v.value:.4g}, {score:.1f}x its usual step",
            ((obs.seq, obs.t, metric, v.value),),
        )


class Flatline(MetricDetector):
    """A metric that normally varies repeats the exact same value for `threshold` readings: a stuck sensor."""

    id = "generic.flatline"
    version = "1.1.0"  # 1.1.0: the run is counted from the first reading, before the baseline is warm
    kind = AlertKind.STUCK_SENSOR
    severity = Severity.LOW
    default_threshold = 12.0
    clear_fraction = 1.0 / 12.0  # any change of value clears it

    def observe(self, st: dict, obs: Obs, views: dict[str, View], profile: Profile) -> Judgement | None:
        v = views.get(self.metric)
        if v is None:
            return None
        if v.sigma is None:  # warming up: count the run already, so a sensor stuck from its first minutes is found
            st["n"] = st.get("n", 1) + 1 if v.prev is not None and v.value == v.prev else 1
            return None
        if v.prev is not None and v.value == v.prev:
            n = st["n"] = st.get("n", 1) + 1
            varies = st.get("varies")
            if varies is None:  # stuck since before the baseline was warm: judge by the spread learned meanwhile
                varies = st["varies"] = v.sigma > 1e-6 + 0.011 * abs(v.expected or 0.0)
        else:
            n = st["n"] = 1
            # A signal that is constant by nature (its usual deviation is ~0) is not stuck when it stays constant.
            varies = st["varies"] = v.sigma > 1e-6 + 0.011 * abs(v.expected or 0.0)
        if not varies:
            return None
        return float(n), v

    def explain(self, obs: Obs, count: float, v: View) -> Verdict:
        metric = self.metric
        return self.verdict(
            metric, v.value, v.expected, count,
            f"{metric} has repeated {v.value:.4g} for {int(count)} readings; it usually varies",
            ((obs.seq, obs.t, metric, v.value),),
        )


WITHIN_RANGE = (0.0, None)  # PhysicalRange's usual judgement: the same every time, so built once


class PhysicalRange(Detector):
    """A value outside the physical range the register declares for the metric (score = 1 outside, 0 inside)."""

    id = "generic.physical_range"
    version = "1.0.0"
    kind = AlertKind.OUT_OF_RANGE
    severity = Severity.MEDIUM
    default_threshold = 1.0
    clear_fraction = 1.0

    def observe(self, st: dict, obs: Obs, views: dict[str, View], profile: Profile) -> Judgement | None:
        ranges = profile.ranges
        if not ranges:
            return None
        for metric, value in obs.metrics.items():
            bounds = ranges.get(metric)
            if bounds is not None and not bounds[0] <= value <= bounds[1]:
                return 1.0, (metric, value, bounds)
        return WITHIN_RANGE

    def explain(self, obs: Obs, score: float, outside: tuple[str, float, tuple[float, float]] | None) -> Verdict:
        if outside is None:
            return self.verdict("*", 0.0, None, 0.0, "every metric within its declared range", ())
        metric, value, (lo, hi) = outside
        return self.verdict(
            metric, value, lo if value < lo else hi, 1.0,
            f"{metric} {value:.4g} is outside its declared range [{lo:.4g}, {hi:.4g}]",
            ((obs.seq, obs.t, metric, value),),
        )


class Silence:
    """No reading for `k` times the usual interval; judged by a timer (`check`), never by the next reading."""

    id = "generic.silence"
    version = "1.0.0"
    kind = AlertKind.SILENCE
    severity = Severity.MEDIUM
    INTERVAL_ALPHA = 0.1

    def __init__(self, k: float = 3.0) -> None:
        self.threshold = k
        self.clear_below = 1.0  # a reading inside the usual interval means the sensor speaks again

    def seen(self, st: dict, arrival: float, observed_t: float) -> None:
        """Record a reading: the usual interval is learned from the sensor's own clock (batched uploads arrive
        in bursts), silence is judged against arrival time (a stale sensor clock must not hide a silence)."""
        prev = st.get("obs")
        if prev is not None and observed_t > prev:
            gap = observed_t - prev
            usual = st.get("iv")
            st["iv"] = gap if usual is None else usual + self.INTERVAL_ALPHA * (min(gap, 10 * usual) - usual)
        st["obs"] = prev if prev and prev > observed_t else observed_t  # max(observed_t, prev or observed_t)
        st["last"] = arrival

    def interval(self, st: dict, profile: Profile) -> float | None:
        return profile.interval_s or st.get("iv")

    def check(self, st: dict, now: float, profile: Profile, last_seq: int) -> Verdict | None:
        last, usual = st.get("last"), self.interval(st, profile)
        if last is None or not usual:
            return None
        gap = max(0.0, now - last)
        score = gap / usual
        return Verdict(
            self.id, self.version, self.kind, self.severity, "*", gap, usual, score, self.threshold,
            self.clear_below, f"no reading for {gap:.0f} s; the sensor usually reports every {usual:.0f} s",
            ((last_seq, last, "*", 0.0),),
        )
