"""`citystream replay` core (pure): one sensor's readings through the worker's own engine, with the worker's timer
ticks between readings, giving per-reading scores and the alert events the worker would have published.

Same as the live worker: the domain's detector set, the register profile (declared ranges and interval) when one is
given, the lifecycle, and silence found by ticks on a `tick_s` grid (only when `Engine.tick_due`, as the worker's
timer does). Different, by necessity: replay judges silence by reading time (the worker by arrival time, which
history does not keep), ticks on a grid of reading time instead of wall-clock, and publishes no rollups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from schemas.alerts import AlertEvent
from services.anomaly.detectors import Obs, Profile, Verdict
from services.anomaly.engine import Engine

SCORE_COLUMNS = ["seq", "observed_at", "kind", "detector", "metric", "observed", "expected", "score", "threshold"]
TICK_S = 5.0  # the worker's default CITYSTREAM_ANOMALY_TICK_INTERVAL_S


@dataclass
class Replay:
    rows: list[list] = field(default_factory=list)  # one per verdict, SCORE_COLUMNS
    events: list[AlertEvent] = field(default_factory=list)
    readings: int = 0
    ticks: int = 0


def _rows(seq: int, t: float, verdicts: list[Verdict]) -> list[list]:
    at = datetime.fromtimestamp(t, UTC).isoformat()
    return [[seq, at, v.kind.value, v.detector, v.metric, v.observed, v.expected, round(v.score, 6), v.threshold]
            for v in verdicts]


def _silence_due_at(engine: Engine, state: dict, profile: Profile) -> float | None:
    """When the worker's timer would first find this sensor silent (None: nothing to find)."""
    sil = state["sil"]
    usual = engine.silence.interval(sil, profile)
    if not usual or sil.get("last") is None or "silence" in state["lc"]["open"]:
        return None
    return sil["last"] + engine.silence.threshold * usual


def _ticks_until(engine: Engine, state: dict, sensor_id: str, profile: Profile, end: float, tick_s: float,
                 out: Replay) -> None:
    """Run the ticks the worker's timer would run before `end` (exclusive), skipping the ones with nothing due."""
    last_tick = -math.inf
    while True:
        due = _silence_due_at(engine, state, profile)
        if due is None:
            return
        tick = math.ceil(due / tick_s) * tick_s  # the first timer tick at or after the due time
        while tick <= last_tick or not engine.tick_due(state, tick, profile):  # float rounding at the boundary
            tick += tick_s
        if tick >= end:
            return
        last_tick = tick
        outcome = engine.tick(state, sensor_id, tick, profile)
        out.ticks += 1
        out.events += outcome.events
        out.rows += _rows(state["seq"], tick, outcome.verdicts)


def replay(engine: Engine, readings: list[Obs], profile: Profile = Profile(), *, until: float | None = None,
           tick_s: float = TICK_S) -> Replay:
    """Readings (one sensor, in order) → scores and alert events; ticks continue up to `until` if given."""
    out, state = Replay(), engine.new_state()
    for obs in readings:
        _ticks_until(engine, state, obs.sensor_id, profile, obs.t, tick_s, out)
        outcome = engine.observe(state, obs, profile, explain_all=True)
        if outcome.duplicate:
            continue
        out.readings += 1
        out.events += outcome.events
        out.rows += _rows(obs.seq, obs.t, outcome.verdicts)
    if readings and until is not None:
        _ticks_until(engine, state, readings[-1].sensor_id, profile, until, tick_s, out)
    return out
