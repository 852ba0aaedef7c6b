"""Online seasonal baseline of one metric: hour-of-week and hour-of-day buckets plus a global robust EWMA (pure).

A metric's baseline is split in two so the per-reading changelog write stays small:
- the *hot* part, a list `[global mean, global abs dev, global n, prev, prev_t, short EWMA, lo, hi]`, changes on
  every reading and is written with the sensor's state every time;
- the *seasonal* part, a list of six bucket lists `[wm, wd, wn, dm, dd, dn]` (hour-of-week and hour-of-day mean,
  abs deviation, count), changes in one slot per reading and is persisted lazily (see `services/anomaly/state.py`).
"""

from __future__ import annotations

from services.anomaly.detectors.base import View

# 1.1.0: winsorised while warming up too; 1.2.0: a masked reading is not learned (`skip_at`), and first readings
# that are all zero give no warm-up scale (nothing clipped) instead of a zero one (everything clipped).
VERSION = "1.2.0"
WEEK_BUCKETS = 168
DAY_BUCKETS = 24
MIN_BUCKET_SAMPLES = 8  # a bucket is trusted after this many readings
MIN_GLOBAL_SAMPLES = 12  # before this the metric is still warming up: no expectation at all
WARMUP_CLIP_AFTER = 4  # from this many readings on, even a warming baseline winsorises what it learns
BUCKET_ALPHA = 0.05  # floor of the bucket learning rate (1/n before that: a plain mean while young)
# Bucket counts only steer the learning rate (1/(n+1) until it reaches BUCKET_ALPHA) and trust (n >= 8): a cap at
# 255 changes nothing and lets a count travel in one byte.
MAX_BUCKET_COUNT = 255
GLOBAL_ALPHA = 0.02
SHORT_ALPHA = 0.3
CLIP_SIGMAS = 4.0  # an outlier moves the baseline as if it were only this far out (robust EWMA)
MAD_TO_SIGMA = 1.2533  # E|x - mu| = sigma * sqrt(2 / pi) for a normal distribution
# Monday 00:00 UTC is hour 0 of the week; the epoch (1970-01-01) was a Thursday, 72 hours after a Monday.
EPOCH_HOUR_OF_WEEK = 72
G_MEAN, G_DEV, G_N, PREV, PREV_T, SHORT, LO, HI = range(8)  # indices of the hot part


def new_hot() -> list:
    return [0.0, 0.0, 0, None, None, None, None, None]


def new_seasonal() -> list:
    return [[0.0] * WEEK_BUCKETS, [0.0] * WEEK_BUCKETS, [0] * WEEK_BUCKETS,
            [0.0] * DAY_BUCKETS, [0.0] * DAY_BUCKETS, [0] * DAY_BUCKETS]


def slots(t: float) -> tuple[int, int]:
    """(hour-of-week, hour-of-day) bucket of epoch second `t`: computed once per reading, shared by its metrics."""
    hour = int(t // 3600)
    return (hour + EPOCH_HOUR_OF_WEEK) % WEEK_BUCKETS, hour % DAY_BUCKETS


def view(hot: list, seasonal: list, t: float, x: float) -> View:
    """The expectation for a reading at epoch second `t`, before `x` is learned."""
    w, d = slots(t)
    return view_at(hot, seasonal, w, d, x)


def view_at(hot: list, seasonal: list, w: int, d: int, x: float) -> View:
    """`view` with the reading's buckets already computed (`slots`): the engine's hot path."""
    if hot[2] < MIN_GLOBAL_SAMPLES:
        return View(x, None, None, hot[3], hot[4], hot[5], False, hot[6], hot[7])
    g_dev, lo, hi = hot[1], hot[6], hot[7]
    weekly = False
    # A fallback baseline knows less (weekends look like weekdays to an hour-of-day bucket): widen it.
    if seasonal[2][w] >= MIN_BUCKET_SAMPLES:
        expected, dev, weekly = seasonal[0][w], seasonal[1][w], True
    elif seasonal[5][d] >= MIN_BUCKET_SAMPLES:
        expected, dev = seasonal[3][d], 1.5 * seasonal[4][d]
    else:
        expected, dev = hot[0], 2.0 * g_dev
    # The floor keeps a perfectly regular signal from dividing by zero (1 % of its level, at least a tiny
    # absolute value), and a young bucket's deviation from being trusted below a tenth of the metric's overall
    # spread. A metric that sits still for long stretches (zeros between load spikes) has no usable
    # deviation; 2 % of its observed range keeps one normal excursion from scoring thousands of sigmas.
    spread = (hi - lo) if hi is not None else 0.0
    sigma = MAD_TO_SIGMA * dev + (0.01 * abs(hot[0]) + 0.1 * MAD_TO_SIGMA * g_dev + 0.02 * spread + 1e-6)
    return View(x, expected, sigma, hot[3], hot[4], hot[5], weekly, lo, hi)


def learn(hot: list, seasonal: list, t: float, x: float, v: View) -> None:
    """Fold reading `x` at `t` into the baseline (call after the detectors have judged it against `v`)."""
    w, d = slots(t)
    learn_at(hot, seasonal, w, d, t, x, v)


def _learn_bucket(means: list, devs: list, counts: list, i: int, x: float, limit: float | None) -> None:
    n = counts[i]
    if n == 0:
        means[i] = x
        counts[i] = 1
        return
    mean = means[i]
    if limit is not None:  # winsorise so an anomaly does not become the new normal in one step
        if x > mean + limit:
            x = mean + limit
        elif x < mean - limit:
            x = mean - limit
    alpha = 1.0 / (n + 1) if n < 19 else BUCKET_ALPHA  # max(1 / (n + 1), 0.05)
    devs[i] += alpha * (abs(x - mean) - devs[i])
    means[i] = mean + alpha * (x - mean)
    if n < MAX_BUCKET_COUNT:
        counts[i] = n + 1


def skip_at(hot: list, t: float, x: float) -> None:
    """A reading that is no sample of normal behaviour (Detector.masks_learning): it is the previous reading for
    the next one's rate of change, and changes nothing else."""
    hot[PREV], hot[PREV_T] = x, t


def learn_at(hot: list, seasonal: list, w: int, d: int, t: float, x: float, v: View) -> None:
    """`learn` with the reading's buckets already computed (`slots`): the engine's hot path, so the two bucket
    updates (hour-of-week, hour-of-day) are written out rather than a function call or a loop each."""
    sigma = v.sigma
    if sigma is not None:
        limit = CLIP_SIGMAS * sigma
    elif hot[2] >= WARMUP_CLIP_AFTER:
        # Still warming up: a provisional scale from the global deviation so far (at least 25 % of the level). A
        # reading beyond it is counted but not learned, so an anomaly in a sensor's first readings does not become
        # its normal (a spike from reading 6 would otherwise sit in every expectation of its first hour). First
        # readings that are all zero (a loop counting no car at night) give no scale at all: then nothing is
        # clipped, or the first car would be refused as an outlier, and every one after it, for the whole warm-up.
        scale = MAD_TO_SIGMA * hot[1] + 0.25 * abs(hot[0])
        if scale > 0.0 and abs(x - hot[0]) > CLIP_SIGMAS * scale:
            hot[2] += 1
            hot[3], hot[4] = x, t
            return
        limit = None
    else:
        limit = None
    wm, wd, wn, dm, dd, dn = seasonal
    _learn_bucket(wm, wd, wn, w, x, limit)
    _learn_bucket(dm, dd, dn, d, x, limit)
    n = hot[2]
    if n == 0:
        hot[0], hot[2] = x, 1
        hot[5] = hot[6] = hot[7] = x
    else:
        g = hot[0]
        gx = x
        if limit is not None:  # min(max(x, g - limit), g + limit), without the two calls
            if gx < g - limit:
                gx = g - limit
            if gx > g + limit:
                gx = g + limit
        alpha = 1.0 / (n + 1) if n < 49 else GLOBAL_ALPHA  # max(1 / (n + 1), 0.02): 1/50 == 0.02 exactly
        hot[1] += alpha * (abs(gx - g) - hot[1])
        hot[0] = g + alpha * (gx - g)
        hot[2] = n + 1
        hot[5] += SHORT_ALPHA * (x - hot[5])
        if x > hot[7]:
            hot[7] = x
        elif x < hot[6]:
            hot[6] = x
    hot[3], hot[4] = x, t
