"""Waste detectors (WasteContainer): overflow, abnormal fill rate, fire risk, missed collection."""

from __future__ import annotations

from schemas.alerts import AlertKind
from schemas.common import Severity
from services.anomaly.detectors.base import Detector, Judgement, Obs, Profile, Verdict, View

LEVEL, TEMPERATURE, METHANE = "fillingLevel", "temperature", "methaneConcentration"
HOUR_S = 3600.0


class Overflow(Detector):
    """fillingLevel at or above the threshold (fraction); hysteresis clears it only below 0.85."""

    id = "waste.overflow"
    version = "1.0.0"
    kind = AlertKind.OVERFLOW
    severity = Severity.MEDIUM
    default_threshold = 0.9
    clear_fraction = 0.85 / 0.9

    def observe(self, st: dict, obs: Obs, views: dict[str, View], profile: Profile) -> Judgement | None:
        level = obs.metrics.get(LEVEL)
        if level is None:
            return None
        return level, None

    def explain(self, obs: Obs, level: float, context: None) -> Verdict:
        return self.verdict(
            LEVEL, level, self.threshold, level, f"bin is {level:.0%} full (threshold {self.threshold:.0%})",
            ((obs.seq, obs.t, LEVEL, level),), Severity.HIGH if level >= 0.98 else None,
        )


class AbnormalFillRate(Detector):
    """Fill rate (fraction per hour) far above the bin's usual rate: robust z of one step's rate, or of a fast
    EWMA of the rate (a steady fast fill hides in one step's noise: at 15 s readings a level noise of 0.4 % is a
    rate noise of 1.4/h). Both are judged against the usual rate and its spread, learned from every step that is
    not an emptying, falls included (the noise is symmetric; positive steps alone bias both)."""

    id = "waste.abnormal_fill_rate"
    # 1.1.0: cites both readings the rate is computed from. 1.2.0: learns from falls too (not emptyings) and not
    # from suspicious steps; the usual deviation shrinks twenty times slower than it grows (a clamped or stuck
    # level must not make the next noisy step abnormal); a sustained rate is judged on a fast EWMA; while the
    # bin's own rate is unknown, a sustained fill above WARMUP_MAX_RATE fires.
    version = "1.2.0"
    kind = AlertKind.ABNORMAL_FILL_RATE
    severity = Severity.LOW
    default_threshold = 6.0
    clear_fraction = 0.5
    metrics = (LEVEL,)
    WARMUP = 12
    MIN_RATE = 0.05  # fraction per hour; slower filling is never alarming
    RECENT_ALPHA = 0.25
    RECENT_NOISE = 0.378  # sqrt(alpha / (2 - alpha)): the EWMA's noise as a share of one step's
    WARMUP_MAX_RATE = 4.0  # fraction per hour: a bin filled in 15 minutes is abnormal for any bin
    EMPTIED_DROP = 0.3  # as the missed-collection rule: a fall this large is an emptying

    def observe(self, st: dict, obs: Obs, views: dict[str, View], profile: Profile) -> Judgement | None:
        v = views.get(LEVEL)
        if v is None:
            return None
        prev, prev_t, t = v.prev, v.prev_t, obs.t
        if prev is None or prev_t is None or t <= prev_t:
            return None
        rate = (v.value - prev) / ((t - prev_t) / HOUR_S)
        prev_seq, st["ps"] = st.get("ps"), obs.seq  # the rate comes from two readings: cite both
        mean, dev, n = st.get("m", 0.0), st.get("d", 0.0), st.get("n", 0)
        scale = 1.2533 * dev + 0.002
        if prev - v.value >= self.EMPTIED_DROP or prev >= 0.98 or (n >= self.WARMUP and rate < mean - 4 * scale):
            st.pop("r", None)  # emptied (wholly or partly), or saturated at full: no filling step to judge
            return None
        recent = st.get("r", mean)
        recent += self.RECENT_ALPHA * (rate - recent)
        # Only a fill faster than usual matters: a fall (a partial emptying, a compacting) must not hide the fast
        # fill that follows it, so the EWMA never drops below the usual rate.
        recent = st["r"] = recent if recent > mean else mean
        if n >= self.WARMUP:
            z = (rate - mean) / scale
            sustained = (recent - mean) / (self.RECENT_NOISE * scale)
            if sustained > z and recent >= self.MIN_RATE:
                z = sustained
        else:  # not blind while the bin's own rate is unknown
            z = self.threshold * recent / self.WARMUP_MAX_RATE
        if v.value >= Overflow.default_threshold * Overflow.clear_fraction:
            z = min(z, self.clear_below * 0.99)  # filling into the overflow band: the overflow rule speaks
        if n < self.WARMUP or z < self.clear_below:  # a suspicious step does not teach the usual rate
            alpha = 1.0 / (n + 1) if n < 19 else 0.05  # max(1 / (n + 1), 0.05): 1/20 == 0.05 exactly
            spread = abs(rate - mean) - dev
            st["d"] = (dev + (alpha if spread > 0 or n < self.WARMUP else 0.05 * alpha) * spread) if n else 0.0
            st["m"], st["n"] = mean + alpha * (rate - mean), n + 1
        if n < 3:
            return None
        return (z if rate >= self.MIN_RATE else min(z, 0.0)), (v, rate, mean, prev_seq)

    def explain(self, obs: Obs, score: float, context: tuple[View, float, float, int | None]) -> Verdict:
        v, rate, mean, prev_seq = context  # the usual rate before this reading was learned
        return self.verdict(
            LEVEL, rate, mean, score, f"filling at {rate:.2f}/h against a usual {mean:.3f}/h",
            ((prev_seq, v.prev_t, LEVEL, v.prev), (obs.seq, obs.t, LEVEL, v.value)) if prev_seq is not None
            else ((obs.seq, obs.t, LEVEL, v.value),),
        )


class FireRisk(Detector):
    """Temperature or methane spike: the worst of temperature/60 °C, methane/5000 ppm (10 % LEL), rise/+25 °C."""

    id = "waste.fire_risk"
    version = "1.1.0"  # 1.1.0: a temperature jump far beyond the usual step is a fire risk too
    kind = AlertKind.FIRE_RISK
    severity = Severity.CRITICAL
    default_threshold = 1.0
    clear_fraction = 0.8
    metrics = (TEMPERATURE,)
    MAX_TEMPERATURE_C = 60.0
    MAX_METHANE_PPM = 5000.0
    MAX_RISE_C = 25.0
    STEP_SIGMAS = 8.0  # a rise between two readings of 8 usual steps (the rate-of-change default) scores 1
    STEP_FLOOR_C = 0.1
    STEP_WARMUP = 12

    def observe(self, st: dict, obs: Obs, views: dict[str, View], profile: Profile) -> Judgement | None:
        temperature, methane = obs.metrics.get(TEMPERATURE), obs.metrics.get(METHANE)
        if temperature is None and methane is None:
            return None
        # The worst of the candidates; a later one wins only if strictly higher (as max() keeps the first).
        score, metric, observed, expected, what, v = 0.0, TEMPERATURE, 0.0, None, _NONE, None
        if temperature is not None:
            candidate = temperature / self.MAX_TEMPERATURE_C
            if candidate > score:
                score, observed, expected, what = candidate, temperature, self.MAX_TEMPERATURE_C, _HOT
            v = views.get(TEMPERATURE)
            if v is not None and v.expected is not None:
                candidate = (temperature - v.expected) / self.MAX_RISE_C
                if candidate > score:
                    score, observed, expected, what = candidate, temperature, v.expected, _RISE
            if v is not None and v.prev is not None:
                # A sudden rise, far beyond the bin's usual step, is the first sign of a fire (it would otherwise
                # surface first as a generic rapid change of temperature).
                step, usual, n = temperature - v.prev, st.get("u", 0.0), st.get("n", 0)
                if n >= self.STEP_WARMUP:
                    candidate = step / (self.STEP_SIGMAS * (1.2533 * usual + self.STEP_FLOOR_C))
                    if candidate > score:
                        score, observed, expected, what = candidate, temperature, v.prev, _JUMP
                size = abs(step)
                counted = size if n < self.STEP_WARMUP or size < 4 * usual + self.STEP_FLOOR_C else \
                    4 * usual + self.STEP_FLOOR_C
                st["u"] = usual + (1.0 / (n + 1) if n < 19 else 0.05) * (counted - usual)
                st["n"] = n + 1
        if methane is not None:
            candidate = methane / self.MAX_METHANE_PPM
            if candidate > score:
                score, metric, observed, expected, what = candidate, METHANE, methane, self.MAX_METHANE_PPM, _GAS
        return score, (metric, observed, expected, what, v)

    def explain(self, obs: Obs, score: float, context: tuple) -> Verdict:
        metric, observed, expected, what, v = context  # the worst candidate and the temperature's view
        cause = _fire_cause(what, obs.metrics.get(TEMPERATURE), obs.metrics.get(METHANE), v)
        return self.verdict(metric, observed, expected, score, f"fire risk: {cause} (score {score:.2f})",
                            ((obs.seq, obs.t, metric, observed),))


_NONE, _HOT, _RISE, _GAS, _JUMP = range(5)  # which fire-risk candidate is the worst


def _fire_cause(what: int, temperature: float | None, methane: float | None, v: View | None) -> str:
    if what == _HOT:
        return f"temperature {temperature:.1f} °C"
    if what == _RISE:
        return f"temperature {temperature:.1f} °C vs usual {v.expected:.1f} °C"
    if what == _GAS:
        return f"methane {methane:.0f} ppm"
    if what == _JUMP:
        return f"temperature jumped from {v.prev:.1f} °C to {temperature:.1f} °C"
    return "no heat or gas"


class MissedCollection(Detector):
    """Full (≥ 80 %) for longer than the bin's usual interval between emptyings (learned; 48 h until known)."""

    id = "waste.missed_collection"
    version = "1.1.0"  # 1.1.0: cites the value of the reading that made the bin full, not the latest value
    kind = AlertKind.MISSED_COLLECTION
    severity = Severity.MEDIUM
    default_threshold = 1.0  # full duration / usual emptying interval
    clear_fraction = 0.5
    metrics = (LEVEL,)
    FULL = 0.8
    EMPTIED_DROP = 0.3
    DEFAULT_INTERVAL_S = 48 * HOUR_S

    def observe(self, st: dict, obs: Obs, views: dict[str, View], profile: Profile) -> Judgement | None:
        v = views.get(LEVEL)
        if v is None:
            return None
        if v.prev is not None and v.prev - v.value >= self.EMPTIED_DROP:  # a collection happened
            last = st.get("last")
            if last is not None and obs.t > last:
                gap, usual = obs.t - last, st.get("iv")
                st["iv"] = gap if usual is None else usual + 0.3 * (gap - usual)
            st["last"] = obs.t
        if v.value >= self.FULL:
            full = st.get("full")  # the reading that made it full, kept while it stays full
            if full is None:
                full = st["full"] = [obs.seq, obs.t, v.value]
        else:
            st.pop("full", None)
            full = None
        usual = max(st.get("iv") or self.DEFAULT_INTERVAL_S, HOUR_S)
        duration = obs.t - full[1] if full else 0.0
        return duration / usual, (v, duration, usual, full)

    def explain(self, obs: Obs, score: float, context: tuple[View, float, float, list | None]) -> Verdict:
        v, duration, usual, full = context
        return self.verdict(
            LEVEL, duration / HOUR_S, usual / HOUR_S, score,
            f"bin full for {duration / HOUR_S:.1f} h; it is usually emptied every {usual / HOUR_S:.1f} h",
            # The reading that made it full (its own value; states before 1.1.0 kept none) and the latest one.
            ((full[0], full[1], LEVEL, full[2] if len(full) > 2 else v.value),
             (obs.seq, obs.t, LEVEL, v.value)) if full else (),
        )
