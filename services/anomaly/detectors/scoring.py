"""Streaming anomaly score in [0, 1] per reading, calibrated per series by an anomaly likelihood (pure, O(1)).

Raw score: how far a reading lies from what the metric's seasonal baseline expects (robust z against the
hour-of-week / hour-of-day / global expectation) and from its recent level, squashed into [0, 1). Calibration
(Numenta's anomaly likelihood, Ahmad et al. 2017): the mean of the last `SHORT_WINDOW` raw scores is compared with
the distribution of raw scores over the series' own long history (a slow running mean and variance); the Gaussian
tail probability of that short mean is the likelihood, reported on NAB's log scale, so one default threshold (0.5:
a tail probability of about 1e-5) serves any series, whatever its scale or noise. A value outside the range seen
so far by more than `SPATIAL_TOLERANCE` of that range scores 1 at once (NAB's Numenta detector does the same).
"""

from __future__ import annotations

import math
from typing import Any

from schemas.alerts import AlertKind
from schemas.common import Severity
from services.anomaly.detectors.base import Detector, Judgement, Obs, Profile, Verdict, View, counting_noise

SHORT_WINDOW = 10  # raw scores averaged before calibration (Numenta: averagingWindow = 10)
LEARNING = 288  # readings whose raw scores only feed the distribution (no verdict): one day of 5-minute readings
LONG_ALPHA_FLOOR = 1.0 / 2000  # the long distribution forgets with this rate once it has 2000 readings
MEAN_FLOOR = 0.03  # Numenta's lower bounds on the raw scores' mean and variance: a near-silent series must not
VARIANCE_FLOOR = 0.0003  # turn the slightest blip into a certain anomaly
SPATIAL_TOLERANCE = 0.05
LOG_NORM = math.log(1.0e-10)  # NAB's log scale: score = log(1 - likelihood) / log(1e-10), in [0, 1]
FALLBACK_Z = 8.0  # young statistics are uncertain: demand 8 robust sigmas (the rate-of-change default)
FALLBACK_RANGE_SHARE = 0.1
BAND_SIGMAS = 3.0  # the expected band an explanation shows: expected ± 3 robust sigmas
RAW_SCALE = 16.0  # raw = 1 - exp(-z / RAW_SCALE): close to linear in z up to ~RAW_SCALE sigmas, then saturating


def tail(z: float) -> float:
    """Upper Gaussian tail probability Q(z)."""
    return 0.5 * math.erfc(z / 1.4142135623730951)


def calibrated(likelihood: float) -> float:
    """NAB's log-likelihood: 0.5 at likelihood 1 - 1e-5, 1.0 at 1 - 1e-10."""
    return math.log(1.0000000001 - likelihood) / LOG_NORM


LEVEL_N = 2000


def _likelihood(a: list, raw: float) -> float | None:
    """Fold one raw score into a calibration state `[n, mean, var, sum, pos, ring...]`; the likelihood that the
    short mean is unusual against the long distribution of short means (None while still learning)."""
    n, mean, var, total, i = a[0], a[1], a[2], a[3], a[4]
    if len(a) - 5 < SHORT_WINDOW:
        a.append(raw)
        total += raw
        count = len(a) - 5
    else:
        total += raw - a[5 + i]
        a[5 + i] = raw
        a[4] = (i + 1) % SHORT_WINDOW
        count = SHORT_WINDOW
    a[3] = total
    short = total / count
    alpha = 1.0 / (n + 1) if n < 2000 else LONG_ALPHA_FLOOR
    delta = short - mean
    a[0], a[1], a[2] = n + 1, mean + alpha * delta, (1.0 - alpha) * (var + alpha * delta * delta)
    if n < LEARNING:
        return None
    std = math.sqrt(var if var > VARIANCE_FLOOR else VARIANCE_FLOOR)
    return 1.0 - tail((short - (mean if mean > MEAN_FLOOR else MEAN_FLOOR)) / std)


class AnomalyScore(Detector):
    """Calibrated anomaly score of one metric; fires at the default calibrated score (one threshold for all)."""

    id = "generic.anomaly_score"
    version = "1.1.0"  # 1.1.0: `counts`: a count's spread is at least its chance spread (counting_noise)
    kind = AlertKind.ANOMALOUS_VALUE
    severity = Severity.LOW
    default_threshold = 0.5
    clear_fraction = 0.5
    quiet_s = 3600.0

    def __init__(self, metric: str, threshold: float | None = None, *, counts: bool = False) -> None:
        super().__init__(threshold)
        self.metric, self.metrics = metric, (metric,)
        self.state_key = f"{self.id}/{metric}"
        self.counts = counts  # the metric counts events (vehicles): never judged finer than its chance spread

    def observe(self, st: dict, obs: Obs, views: dict[str, View], profile: Profile) -> Judgement | None:
        v = views.get(self.metric)
        if v is None or v.expected is None:
            return None
        sigma = v.sigma
        if self.counts and sigma < (floor := counting_noise(v.expected)):
            sigma = floor  # a local, not a copy of the view: dataclasses.replace costs ~1.4 µs per reading
        x = v.value
        prev_seq, st["q"] = st.get("q"), obs.seq  # the previous reading's seq: its explanation cites both
        # The reading's place in the series' own long-run distribution of values (slow running mean/variance).
        level = st.get("l")
        if level is None:
            level = st["l"] = [0, x, 0.0]
        n_l, mu, var = level
        alpha = 1.0 / (n_l + 1) if n_l < LEVEL_N else 1.0 / LEVEL_N
        d = x - mu
        z_level = abs(d) / (math.sqrt(var) + 1e-9) if n_l > 1 else 0.0
        level[0], level[1], level[2] = n_l + 1, mu + alpha * d, (1.0 - alpha) * (var + alpha * d * d)
        z = abs(x - v.expected) / sigma
        raw = 1.0 - math.exp(-z / RAW_SCALE)
        raw_level = 1.0 - math.exp(-z_level / RAW_SCALE)
        if "a" not in st:
            st["a"], st["g"] = [0, 0.0, 0.0, 0.0, 0], [0, 0.0, 0.0, 0.0, 0]
        p1 = _likelihood(st["a"], raw)
        p2 = _likelihood(st["g"], raw_level)
        hi, lo = v.hi, v.lo
        spatial = False
        # Outside the range seen so far, and outside the usual band too: on a noisy series a new extreme a hair
        # beyond the old one is no anomaly (Numenta's range check alone fires on every such first sight).
        if hi is not None and hi > lo and z >= BAND_SIGMAS:
            margin = SPATIAL_TOLERANCE * (hi - lo)
            spatial = x > hi + margin or x < lo - margin
        if p1 is None:
            # Still learning the score's distribution: not blind meanwhile, the plain robust z judges the reading
            # (the threshold is reached at FALLBACK_Z sigmas, the robust z detector's own default).
            # No range check yet either: while a series is young almost every new extreme is just a first sight,
            # and a young bucket's spread is not trusted below a tenth of the range seen (a count of 1 to 5
            # vehicles per reading learns a tiny deviation from its first eight readings).
            young = abs(x - v.expected) / max(sigma, FALLBACK_RANGE_SHARE * (hi - lo)) if hi is not None else z
            score = min(1.0, self.threshold * young / FALLBACK_Z)
            return score, (v, sigma, raw, None, False, z, prev_seq)
        likelihood = p1 if p1 > p2 else p2
        score = 1.0 if spatial else calibrated(likelihood)
        if score >= self.clear_below and raw < st["a"][1] and raw_level < st["g"][1]:
            # The reading itself is as expected (both raw scores below their usual mean): the short window only
            # remembers an anomaly that has passed, so it neither opens an alert nor keeps one open.
            score = self.clear_below * 0.99
        return score, (v, sigma, raw, likelihood, spatial, z, prev_seq)

    def explain(self, obs: Obs, score: float, context: Any) -> Verdict:
        v, sigma, raw, likelihood, spatial, z, prev_seq = context
        metric = self.metric
        if spatial:
            why = f"outside the range seen so far [{v.lo:.4g}, {v.hi:.4g}]"
        elif likelihood is None:
            why = f"{z:.1f} robust sigmas off (the score's calibration is still learning)"
        else:
            why = f"{z:.1f} robust sigmas off, as unusual for this series as a tail of {1.0 - likelihood:.1e}"
        band = (v.expected - BAND_SIGMAS * sigma, v.expected + BAND_SIGMAS * sigma)
        verdict = self.verdict(
            metric, v.value, v.expected, score,
            f"{metric} {v.value:.4g} against an expected {v.expected:.4g} (usual band {band[0]:.4g} to "
            f"{band[1]:.4g}): anomaly score {score:.2f}, {why}",
            ((prev_seq, v.prev_t, metric, v.prev), (obs.seq, obs.t, metric, v.value))
            if prev_seq is not None and v.prev is not None and v.prev_t is not None
            else ((obs.seq, obs.t, metric, v.value),),
        )
        verdict.likelihood, verdict.band, verdict.raw = likelihood, band, raw
        return verdict
