"""Labels file (JSON lines) and its scorer: precision, recall and detection delay of alerts against injected episodes.

Line kinds (field `category`): `run` (first line: seed, sensor ids, interval), `anomaly` (sensor_id, kind, start,
end — epoch seconds of sim time), `bad_traffic` (sensor_id, kind, expected_reason, start, end=null).
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
class Score:
    labels: int
    detected: int
    alerts: int
    true_alerts: int
    delays_s: tuple[float, ...]
    by_kind: dict[str, tuple[int, int]]  # kind → (labels, detected)

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


def score(labels: list[dict[str, Any]], alert_events: list[dict[str, Any]], grace_s: float = 0.0) -> Score:
    """An episode is detected when an `opened` alert of its kind on its sensor occurs within [start, end + grace].

    Precision counts every opened alert on a simulated sensor (from the `run` line) during the labelled time span;
    an alert that matches no episode of its kind is a false positive.
    """
    episodes = [label for label in labels if label.get("category") == "anomaly"]
    run = next((label for label in labels if label.get("category") == "run"), {})
    fleet = set(run.get("sensor_ids", ())) or {label["sensor_id"] for label in episodes}
    opened = [e for e in alert_events if e.get("event_type") == "opened" and e.get("sensor_id") in fleet]
    detected, delays, matched_alerts = 0, [], set()
    by_kind: dict[str, list[int]] = {}
    for label in episodes:
        start, end = float(label["start"]), float(label["end"]) + grace_s
        hits = [(index, _epoch(e["occurred_at"])) for index, e in enumerate(opened)
                if e["sensor_id"] == label["sensor_id"] and e["kind"] == label["kind"]
                and start <= _epoch(e["occurred_at"]) <= end]
        tally = by_kind.setdefault(label["kind"], [0, 0])
        tally[0] += 1
        if hits:
            detected += 1
            tally[1] += 1
            delays.append(min(t for _, t in hits) - start)
            matched_alerts.update(index for index, _ in hits)
    return Score(len(episodes), detected, len(opened), len(matched_alerts), tuple(delays),
                 {kind: (n, d) for kind, (n, d) in by_kind.items()})
