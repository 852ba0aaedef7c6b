"""Online seasonal baseline of one metric: hour-of-week and hour-of-day buckets plus a global robust EWMA (pure).

State is a plain dict of lists and floats so it serialises as JSON into a Faust table changelog.
"""

from __future__ import annotations

from services.anomaly.detectors.base import View

VERSION = "1.0.0"
WEEK_BUCKETS = 168
DAY_BUCKETS = 24
MIN_BUCKET_SAMPLES = 8  # a bucket is trusted after this many readings
MIN_GLOBAL_SAMPLES = 12  # before this the metric is still warming up: no expectation at all
BUCKET_ALPHA = 0.05  # floor of the bucket learning rate (1/n before that: a plain mean while young)
GLOBAL_ALPHA = 0.02
SHORT_ALPHA = 0.3
CLIP_SIGMAS = 4.0  # an outlier moves the baseline as if it were only this far out (robust EWMA)
MAD_TO_SIGMA = 1.2533  # E|x - mu| = sigma * sqrt(2 / pi) for a normal distribution
# Monday 00:00 UTC is hour 0 of the week; the epoch (1970-01-01) was a Thursday, 72 hours after a Monday.
EPOCH_HOUR_OF_WEEK = 72


def new_state() -> dict:
    return {
        "wm": [0.0] * WEEK_BUCKETS, "wd": [0.0] * WEEK_BUCKETS, "wn": [0] * WEEK_BUCKETS,
        "dm": [0.0] * DAY_BUCKETS, "dd": [0.0] * DAY_BUCKETS, "dn": [0] * DAY_BUCKETS,
        "g": [0.0, 0.0, 0], "p": None, "pt": None, "s": None, "lo": None, "hi": None,
    }


def _floor(ms: dict) -> float:
    # Keeps a perfectly regular signal from dividing by zero (1 % of its level, at least a tiny absolute value),
    # and a young bucket's deviation from being trusted below a tenth of the metric's overall spread.
    # A metric that sits still for long stretches (zeros between load spikes) has no usable deviation; 2 % of
    # its observed range keeps one normal excursion from scoring thousands of sigmas.
    g = ms["g"]
    spread = (ms["hi"] - ms["lo"]) if ms.get("hi") is not None else 0.0
    return 0.01 * abs(g[0]) + 0.1 * MAD_TO_SIGMA * g[1] + 0.02 * spread + 1e-6


def view(ms: dict, t: float, x: float) -> View:
    """The expectation for a reading at epoch second `t`, before `x` is learned."""
    g = ms["g"]
    expected = sigma = None
    weekly = False
    if g[2] >= MIN_GLOBAL_SAMPLES:
        hour = int(t // 3600)
        w = (hour + EPOCH_HOUR_OF_WEEK) % WEEK_BUCKETS
        # A fallback baseline knows less (weekends look like weekdays to an hour-of-day bucket): widen it.
        if ms["wn"][w] >= MIN_BUCKET_SAMPLES:
            expected, dev, weekly = ms["wm"][w], ms["wd"][w], True
        else:
            d = hour % DAY_BUCKETS
            if ms["dn"][d] >= MIN_BUCKET_SAMPLES:
                expected, dev = ms["dm"][d], 1.5 * ms["dd"][d]
            else:
                expected, dev = g[0], 2.0 * g[1]
        sigma = MAD_TO_SIGMA * dev + _floor(ms)
    return View(x, expected, sigma, ms["p"], ms["pt"], ms["s"], weekly, ms.get("lo"), ms.get("hi"))


def _bucket(means: list, devs: list, counts: list, i: int, x: float, limit: float | None) -> None:
    n = counts[i]
    if n == 0:
        means[i] = x
        counts[i] = 1
        return
    mean = means[i]
    if limit is not None:  # winsorise so an anomaly does not become the new normal in one step
        x = min(max(x, mean - limit), mean + limit)
    alpha = max(1.0 / (n + 1), BUCKET_ALPHA)
    devs[i] += alpha * (abs(x - mean) - devs[i])
    means[i] = mean + alpha * (x - mean)
    counts[i] = n + 1 if n < 1_000_000 else n


def learn(ms: dict, t: float, x: float, v: View) -> None:
    """Fold reading `x` at `t` into the baseline (call after the detectors have judged it against `v`)."""
    limit = CLIP_SIGMAS * v.sigma if v.sigma is not None else None
    hour = int(t // 3600)
    _bucket(ms["wm"], ms["wd"], ms["wn"], (hour + EPOCH_HOUR_OF_WEEK) % WEEK_BUCKETS, x, limit)
    _bucket(ms["dm"], ms["dd"], ms["dn"], hour % DAY_BUCKETS, x, limit)
    g = ms["g"]
    if g[2] == 0:
        g[0], g[2] = x, 1
    else:
        gx = x if limit is None else min(max(x, g[0] - limit), g[0] + limit)
        alpha = max(1.0 / (g[2] + 1), GLOBAL_ALPHA)
        g[1] += alpha * (abs(gx - g[0]) - g[1])
        g[0] += alpha * (gx - g[0])
        g[2] += 1
    ms["s"] = x if ms["s"] is None else ms["s"] + SHORT_ALPHA * (x - ms["s"])
    ms["p"], ms["pt"] = x, t
    if ms.get("hi") is None:
        ms["lo"] = ms["hi"] = x
    elif x > ms["hi"]:
        ms["hi"] = x
    elif x < ms["lo"]:
        ms["lo"] = x
