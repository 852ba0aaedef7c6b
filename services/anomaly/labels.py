"""Labels file (JSON lines) and its scorer: precision, recall and detection delay of alerts against injected episodes.

Line kinds (field `category`): `run` (first line: seed, sensor ids, interval), `anomaly` (sensor_id, kind, start,
end, decided — epoch seconds of sim time; wall_start, wall_end — when the simulator sent that span), `bad_traffic`
(sensor_id, kind, expected_reason, start, end=null), `end` (last line of a run that stopped cleanly: `t`, the sim
time it stopped at).
`score` takes AlertEvent-shaped dicts (from `citystream.alerts.v1` or the alert_events table).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any


class LabelWriter:
    """Appends one JSON object per line and flushes, so a crash or Ctrl-C never leaves a half-written label."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._out: IO[str] = path.open("w", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._out.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._out.flush()

    def close(self) -> None:
        self._out.close()


def read_labels(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass(frozen=True)
class KindScore:
    labels: int = 0  # episodes of this kind
    detected: int = 0  # episodes with an opened alert of this kind on their sensor in their window
    alerts: int = 0  # opened alerts of this kind on simulated sensors
    true_alerts: int = 0  # of those, the ones inside an episode of this kind
    delays_s: tuple[float, ...] = ()

    @property
    def recall(self) -> float:
        return self.detected / self.labels if self.labels else 0.0

    @property
    def precision(self) -> float | None:
        return self.true_alerts / self.alerts if self.alerts else None

    @property
    def median_delay_s(self) -> float | None:
        ordered = sorted(self.delays_s)
        return ordered[len(ordered) // 2] if ordered else None


@dataclass(frozen=True)
class Score:
    labels: int
    detected: int
    alerts: int
    true_alerts: int
    delays_s: tuple[float, ...]
    kinds: dict[str, KindScore]  # by alert kind: every labelled kind and every kind that alerted
    unfinished: int = 0  # episodes still running when the run stopped and not yet decided: not scored (`score`)

    @property
    def by_kind(self) -> dict[str, tuple[int, int]]:
        """kind → (labels, detected)."""
        return {kind: (k.labels, k.detected) for kind, k in self.kinds.items() if k.labels}

    @property
    def recall(self) -> float:
        return self.detected / self.labels if self.labels else 0.0

    @property
    def precision(self) -> float:
        return self.true_alerts / self.alerts if self.alerts else 0.0

    @property
    def median_delay_s(self) -> float | None:
        ordered = sorted(self.delays_s)
        return ordered[len(ordered) // 2] if ordered else None


def _epoch(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    from datetime import datetime

    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _windows(label: dict[str, Any], grace_s: float) -> list[tuple[float, float]]:
    """Where an alert for this episode may occur: its sim-time span and, when the run recorded it, its wall-time span.

    Detectors judge a reading at its `observed_at` (sim time), but silence is judged by a timer on arrival (wall)
    time; the two differ while the simulator replays a backfill faster than real time.
    """
    windows = [(float(label["start"]), float(label["end"]) + grace_s)]
    if label.get("wall_start") is not None and label.get("wall_end") is not None:
        windows.append((float(label["wall_start"]), float(label["wall_end"]) + grace_s))
    return windows


def score(labels: list[dict[str, Any]], alert_events: list[dict[str, Any]], grace_s: float = 0.0) -> Score:
    """An episode is detected when an `opened` alert of its kind on its sensor occurs within [start, end + grace]
    (in sim time, or in wall time when the label carries it); the delay is from the start of the matching span.

    Precision counts every opened alert on a simulated sensor (from the `run` line); an alert that matches no
    episode of its kind is a false positive. An episode that ended before the run stopped (the `end` line) is
    scored. One still running then is scored, found or missed, only when its `decided` time had come: the simulator
    sets it a fixed number of readings after the start for a kind its rule judges within a few readings, and at
    the end for a slow kind (a drift is judged against a week of history, a missed collection after the bin's
    usual emptying interval). Otherwise it is pending and not scored, found or not; `unfinished` counts them. A
    label without `decided` (older labels files) is scored once found, pending otherwise.
    Alerts opened after the run stopped are left out (the silence of a stopped simulator is not an anomaly).
    """
    stopped = next((float(label["t"]) for label in labels if label.get("category") == "end"), None)
    episodes = [label for label in labels if label.get("category") == "anomaly"]
    run = next((label for label in labels if label.get("category") == "run"), {})
    fleet = set(run.get("sensor_ids", ())) or {label["sensor_id"] for label in episodes}
    # Alerts after the run stopped are not about it: once the simulator stops, every sensor falls silent.
    opened: list[tuple[dict[str, Any], float]] = []
    for event in alert_events:
        if event.get("event_type") == "opened" and event.get("sensor_id") in fleet:
            at = _epoch(event["occurred_at"])
            if stopped is None or at <= stopped:
                opened.append((event, at))
    scored, detected, delays, matched_alerts, pending = 0, 0, [], set(), 0
    per_kind: dict[str, dict[str, Any]] = {}

    def tally(kind: str) -> dict[str, Any]:
        return per_kind.setdefault(kind, {"labels": 0, "detected": 0, "alerts": 0, "true_alerts": 0, "delays": []})

    for label in episodes:
        first: float | None = None
        for window_start, window_end in _windows(label, grace_s):
            hits = [(index, t) for index, (e, t) in enumerate(opened)
                    if e["sensor_id"] == label["sensor_id"] and e["kind"] == label["kind"]
                    and window_start <= t <= window_end]
            if hits:
                matched_alerts.update(index for index, _ in hits)
                delay = min(t for _, t in hits) - window_start
                first = delay if first is None else min(first, delay)
        if stopped is not None and float(label["end"]) > stopped:
            decided = label.get("decided")
            if (first is None) if decided is None else float(decided) > stopped:
                pending += 1
                continue
        scored += 1
        kind = tally(label["kind"])
        kind["labels"] += 1
        if first is not None:
            detected += 1
            kind["detected"] += 1
            kind["delays"].append(first)
            delays.append(first)
    for index, (event, _) in enumerate(opened):
        kind = tally(event["kind"])
        kind["alerts"] += 1
        kind["true_alerts"] += index in matched_alerts
    kinds = {name: KindScore(k["labels"], k["detected"], k["alerts"], k["true_alerts"], tuple(k["delays"]))
             for name, k in sorted(per_kind.items())}
    return Score(scored, detected, len(opened), len(matched_alerts), tuple(delays), kinds, pending)
