"""One-minute tumbling aggregates per sensor and metric (pure): closed by reading time or by a timer flush.

State per metric: `[window_start_s, count, min, max, sum, last, last_t]`, JSON-able for the table changelog.
"""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.rollups import Rollup

WINDOW_S = 60


def _rollup(sensor_id: str, domain: str, metric: str, w: list) -> Rollup:
    start = w[0]
    return Rollup(
        sensor_id=sensor_id, domain=domain, metric=metric, window_start=datetime.fromtimestamp(start, UTC),
        window_end=datetime.fromtimestamp(start + WINDOW_S, UTC), count=w[1], min=w[2], max=w[3],
        mean=w[4] / w[1], last=w[5],
    )


def add(roll: dict, sensor_id: str, domain: str, t: float, metrics: dict[str, float]) -> list[Rollup]:
    """Fold one reading in; returns the windows it closed. A reading older than the metric's open window is
    dropped from the rollups (nobody counts it) because that window's rollup was already published: the reading
    itself is still stored by the sink, the published rollup simply does not include it."""
    start = t - t % WINDOW_S
    closed: list[Rollup] = []
    for metric, value in metrics.items():
        w = roll.get(metric)
        if w is not None and w[0] != start:
            if start < w[0]:
                continue
            closed.append(_rollup(sensor_id, domain, metric, w))
            w = None
        if w is None:
            roll[metric] = [start, 1, value, value, value, value, t]
            continue
        w[1] += 1
        if value < w[2]:
            w[2] = value
        if value > w[3]:
            w[3] = value
        w[4] += value
        if t >= w[6]:
            w[5], w[6] = value, t
    return closed


def flush(roll: dict, sensor_id: str, domain: str, now: float, grace_s: float = 10.0) -> list[Rollup]:
    """Close every window that ended more than `grace_s` before `now` (a timer calls this; quiet sensors too)."""
    closed = []
    for metric in [m for m, w in roll.items() if w[0] + WINDOW_S + grace_s <= now]:
        closed.append(_rollup(sensor_id, domain, metric, roll.pop(metric)))
    return closed
