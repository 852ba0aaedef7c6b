"""Detector building blocks: the observation, the sensor profile, the verdict and the detector base class (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from schemas.alerts import AlertKind, ContributingReading, Explanation
from schemas.common import Severity

# (seq, observed_at epoch seconds, metric, value): cheap to build on the hot path, turned into models only on alerts.
Contribution = tuple[int, float, str, float]


@dataclass(slots=True)
class Obs:
    """One reading as the detectors see it: times in epoch seconds, metrics as a plain dict."""

    sensor_id: str
    seq: int
    t: float
    metrics: dict[str, float]


@dataclass(frozen=True, slots=True)
class Profile:
    """What the register declares about a sensor: physical ranges and the reporting interval (seconds)."""

    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    interval_s: float | None = None


DEFAULT_PROFILE = Profile()


def counting_noise(level: float | None) -> float:
    """The spread a count has by chance alone (Poisson: sqrt of its mean, at least one unit): vehicles passing a
    loop arrive at random, so at 0.2 vehicles per reading a count of 2 says nothing, however still the night was."""
    return math.sqrt(level) if level is not None and level > 1.0 else 1.0


@dataclass(slots=True)
class View:
    """A metric's learned expectation at the reading's time, computed before the reading is learned."""

    value: float
    expected: float | None  # seasonal (hour-of-week, else hour-of-day, else global) mean; None while warming up
    sigma: float | None
    prev: float | None  # previous value of this metric and its time
    prev_t: float | None
    short: float | None  # fast EWMA of recent values
    weekly: bool = False  # the expectation comes from a trusted hour-of-week bucket (not a fallback)
    lo: float | None = None  # lowest and highest value seen so far
    hi: float | None = None


@dataclass(slots=True)
class Verdict:
    """A detector's judgement of one reading: fires at `score >= threshold`, is normal again below `clear_below`."""

    detector: str
    version: str
    kind: AlertKind
    severity: Severity
    metric: str
    observed: float
    expected: float | None
    score: float
    threshold: float
    clear_below: float
    summary: str
    contributing: tuple[Contribution, ...] = ()
    quiet_s: float = 0.0  # the detector's own minimum normal time before its alert auto-resolves
    # Evidence of a calibrated score (generic.anomaly_score): the likelihood, the usual band, the raw score.
    likelihood: float | None = None
    band: tuple[float, float] | None = None
    raw: float | None = None

    @property
    def firing(self) -> bool:
        return self.score >= self.threshold

    @property
    def ratio(self) -> float:
        return self.score / self.threshold if self.threshold else 0.0

    def explanation(self) -> Explanation:
        from datetime import UTC, datetime

        return Explanation(
            detector=self.detector, detector_version=self.version, metric=self.metric,
            observed=round(self.observed, 6), expected=None if self.expected is None else round(self.expected, 6),
            score=round(self.score, 6), threshold=self.threshold,
            summary=self.summary,
            likelihood=None if self.likelihood is None else round(self.likelihood, 12),
            raw_score=None if self.raw is None else round(self.raw, 6),
            expected_low=None if self.band is None else round(self.band[0], 6),
            expected_high=None if self.band is None else round(self.band[1], 6),
            contributing=tuple(
                ContributingReading(seq=seq, observed_at=datetime.fromtimestamp(t, UTC), metric=m, value=v)
                for seq, t, m, v in self.contributing
            ),
        )


# What a detector returns for a reading it judged: the score, and what its `explain` needs to turn that score into
# a Verdict later (usually the metric's View). Almost every reading is normal with no alert open, and building the
# explanation costs more than the judging, so the engine asks for it only when the score fires, an alert of the
# kind is open, or a replay wants every score.
Judgement = tuple[float, Any]


class Detector:
    """Base of every detector. `observe` reads shared metric views and its own small JSON-able state dict and
    returns `(score, context)`, or None when it cannot judge the reading (warming up, metric missing); `explain`
    turns a judgement into the Verdict an alert carries. A detector's kind, threshold and hysteresis are fixed."""

    id: ClassVar[str]
    version: ClassVar[str]  # every detector declares its own; bump it whenever its scoring changes
    kind: ClassVar[AlertKind]
    severity: ClassVar[Severity] = Severity.MEDIUM
    default_threshold: ClassVar[float]
    clear_fraction: ClassVar[float] = 0.7  # hysteresis: normal again only below this share of the threshold
    # Statistical detectors see one anomaly as a burst of outliers: the alert stays open through the burst.
    quiet_s: ClassVar[float] = 0.0
    metrics: tuple[str, ...] = ()  # metrics whose views the detector needs
    # A reading this detector judges at or above its threshold is no sample of its metrics' normal behaviour (a
    # lost supply reads zero): the engine does not learn them into their baselines, so an anomaly that spans a new
    # hour does not become that hour's normal and the sensor's return look like the next anomaly.
    masks_learning: ClassVar[bool] = False

    def __init__(self, threshold: float | None = None) -> None:
        self.threshold = self.default_threshold if threshold is None else threshold
        self.clear_below = self.threshold * self.clear_fraction
        self.state_key = self.id  # per-metric detectors append the metric so their states never collide

    def observe(self, st: dict, obs: Obs, views: dict[str, View], profile: Profile) -> Judgement | None:
        raise NotImplementedError

    def explain(self, obs: Obs, score: float, context: Any) -> Verdict:
        """The Verdict of a judgement `observe` made of `obs` (called right after it, before the next reading)."""
        raise NotImplementedError

    def judge(self, st: dict, obs: Obs, views: dict[str, View], profile: Profile) -> Verdict | None:
        """`observe` and `explain` in one step: what tests and tools that look at one detector want."""
        judged = self.observe(st, obs, views, profile)
        return None if judged is None else self.explain(obs, *judged)

    def verdict(self, metric: str, observed: float, expected: float | None, score: float, summary: str,
                contributing: tuple[Contribution, ...], severity: Severity | None = None) -> Verdict:
        return Verdict(self.id, self.version, self.kind, severity or self.severity, metric, observed, expected,
                       score, self.threshold, self.clear_below, summary, contributing, self.quiet_s)


def escalate(severity: Severity, steps: int) -> Severity:
    """`severity` raised by `steps` levels on the Smart Data Models scale, capped at critical."""
    order = list(Severity)
    return order[min(len(order) - 1, order.index(severity) + steps)]
