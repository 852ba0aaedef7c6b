"""`citystream eval --labels`: a simulator labels file scored against what the platform stored in TimescaleDB —
opened alerts (`alert_events`) against the labelled episodes (precision, recall, delay per kind), and the
rejections (`rejections`) of each bad-traffic sender against the reason it should get."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from rich.table import Table

from services.anomaly.labels import Score, read_labels, score


@dataclass(frozen=True)
class BadTrafficResult:
    sensor_id: str
    kind: str
    expected_reason: str
    reasons: dict[str, int]  # rejection reason → rows stored for this sender

    @property
    def refused_as_expected(self) -> bool:
        return self.reasons.get(self.expected_reason, 0) > 0


@dataclass(frozen=True)
class Evaluation:
    labels_path: Path
    detection: Score
    bad_traffic: tuple[BadTrafficResult, ...]

    def as_dict(self) -> dict[str, Any]:
        """The figures as one JSON-ready object (NaN-free: an undefined ratio is null)."""
        d = self.detection
        return {
            "labels": str(self.labels_path), "episodes": d.labels, "detected": d.detected, "alerts": d.alerts,
            "precision": round(d.precision, 3) if d.alerts else None, "recall": round(d.recall, 3),
            "median_delay_s": d.median_delay_s, "unfinished": d.unfinished,
            "kinds": {kind: {"episodes": k.labels, "detected": k.detected, "alerts": k.alerts,
                             "recall": round(k.recall, 3) if k.labels else None,
                             "precision": None if k.precision is None else round(k.precision, 3),
                             "median_delay_s": k.median_delay_s} for kind, k in d.kinds.items()},
            "bad_traffic": {b.kind: {"expected": b.expected_reason, "refused_as_expected": b.refused_as_expected,
                                     "reasons": b.reasons} for b in self.bad_traffic},
        }


async def fetch_alert_events(connection: asyncpg.Connection, labels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    run = next((label for label in labels if label.get("category") == "run"), {})
    sensor_ids = run.get("sensor_ids") or sorted({label["sensor_id"] for label in labels})
    rows = await connection.fetch(
        "SELECT sensor_id, kind, event_type, extract(epoch FROM occurred_at) AS occurred_at "
        "FROM alert_events WHERE sensor_id = ANY($1::text[]) AND occurred_at >= to_timestamp($2)",
        sensor_ids, float(run.get("start", 0)))
    return [dict(row) | {"occurred_at": float(row["occurred_at"])} for row in rows]


async def fetch_rejections(connection: asyncpg.Connection, sensor_ids: list[str]) -> dict[str, Counter]:
    rows = await connection.fetch("SELECT sensor_id, reason, count(*) AS n FROM rejections "
                                  "WHERE sensor_id = ANY($1::text[]) GROUP BY sensor_id, reason", sensor_ids)
    found: dict[str, Counter] = {}
    for row in rows:
        found.setdefault(row["sensor_id"], Counter())[row["reason"]] = row["n"]
    return found


async def evaluate(database_url: str, labels_path: Path, grace_s: float = 600.0) -> Evaluation:
    labels = read_labels(labels_path)
    # One line per sender: the latest label wins (a sender suspended mid-run is labelled when it happens).
    senders = {label["sensor_id"]: label for label in labels if label.get("category") == "bad_traffic"}
    connection = await asyncpg.connect(database_url, timeout=10)
    try:
        events = await fetch_alert_events(connection, labels)
        rejections = await fetch_rejections(connection, sorted(senders))
    finally:
        await connection.close()
    bad = tuple(BadTrafficResult(sensor_id, label["kind"], label["expected_reason"],
                                 dict(rejections.get(sensor_id, Counter())))
                for sensor_id, label in sorted(senders.items()))
    return Evaluation(labels_path, score(labels, events, grace_s), bad)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def render(evaluation: Evaluation) -> list[Table]:
    detection = Table(title=f"detection vs {evaluation.labels_path}")
    for column in ("kind", "episodes", "detected", "recall", "alerts", "precision", "median delay s"):
        detection.add_column(column, justify="left" if column == "kind" else "right")
    for kind, k in evaluation.detection.kinds.items():
        detection.add_row(kind, str(k.labels), str(k.detected), _fmt(k.recall if k.labels else None, ".2f"),
                          str(k.alerts), _fmt(k.precision, ".2f"), _fmt(k.median_delay_s, ".0f"))
    d = evaluation.detection
    detection.add_row("all", str(d.labels), str(d.detected), _fmt(d.recall if d.labels else None, ".2f"),
                      str(d.alerts), _fmt(d.precision if d.alerts else None, ".2f"), _fmt(d.median_delay_s, ".0f"),
                      style="bold")
    if d.unfinished:
        detection.caption = (f"{d.unfinished} episode(s) still running when the run stopped and not yet decided: "
                             "not scored")
    refused = Table(title="bad traffic: rejections stored per sender")
    for column in ("sender", "expected reason", "refused as expected", "stored rejections by reason"):
        refused.add_column(column)
    for b in evaluation.bad_traffic:
        refused.add_row(b.kind, b.expected_reason, "yes" if b.refused_as_expected else "[red]no[/red]",
                        ", ".join(f"{r} {n}" for r, n in sorted(b.reasons.items())) or "-")
    return [detection, refused]
