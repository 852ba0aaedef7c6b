"""NAB scoring rules (Numenta Anomaly Benchmark v1.1) over detection indices: windows, scaled sigmoid, profiles."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

PROFILES = {"standard": (1.0, 0.11, 1.0), "reward_low_fp": (1.0, 0.22, 1.0), "reward_low_fn": (1.0, 0.11, 2.0)}


@dataclass
class Series:
    name: str
    times: list[float]  # epoch seconds (NAB timestamps are naive; read as UTC)
    values: list[float]
    windows: list[tuple[int, int]]  # inclusive row index ranges

    @property
    def probation(self) -> int:
        return min(math.floor(0.15 * len(self.times)), 750)


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.strip()).replace(tzinfo=UTC).timestamp()


def load(root: Path) -> list[Series]:
    """Every CSV listed in `root/windows.json`, with its windows as row index ranges."""
    labels = json.loads((root / "windows.json").read_text())
    corpus = []
    for name in sorted(labels):
        with (root / "data" / name).open() as handle:
            rows = list(csv.DictReader(handle))
        times = [_epoch(row["timestamp"]) for row in rows]
        windows = []
        for start, end in labels[name]:
            a, b = _epoch(start), _epoch(end)
            inside = [i for i, t in enumerate(times) if a <= t <= b]
            if inside:
                windows.append((inside[0], inside[-1]))
        corpus.append(Series(name, times, [float(row["value"]) for row in rows], windows))
    return corpus


def scaled_sigmoid(position: float) -> float:
    """NAB's weight: +0.987 at a window's left edge, 0 at its right edge, towards -1 long after it."""
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


MAX_TP = 2.0 / (1.0 + math.exp(-5.0)) - 1.0  # scaled_sigmoid(-1.0): a detection at a window's left edge


def scored_windows(series: Series) -> list[tuple[int, int]]:
    """The windows NAB scores: those with at least one row after the probationary period."""
    return [w for w in series.windows if w[1] >= series.probation]


def raw_score(series: Series, detections: list[int], profile: str) -> float:
    """Sum over one file, as NAB's sweeper computes it: earliest detection per window (sigmoid-weighted TP scaled
    so a left-edge detection earns the full TP weight), missed windows (FN), and every detection outside a window
    (FP, discounted shortly after a window). Probationary rows are not scored, nor windows that lie wholly in it."""
    tp_w, fp_w, fn_w = PROFILES[profile]
    score, hit = 0.0, set()
    for i in sorted(set(detections)):
        if i < series.probation:
            continue
        window = next((k for k, (a, b) in enumerate(series.windows) if a <= i <= b), None)
        if window is not None:
            if window not in hit:
                hit.add(window)
                a, b = series.windows[window]
                score += tp_w * scaled_sigmoid(-(b - i + 1) / (b - a + 1)) / MAX_TP
            continue
        before = [w for w in series.windows if w[1] < i]
        if before:
            a, b = before[-1]
            score += fp_w * scaled_sigmoid(abs(b - i) / max(b - a, 1))
        else:
            score -= fp_w
    return score - fn_w * (len(scored_windows(series)) - len(hit))


def normalised(corpus: list[Series], detections: dict[str, list[int]], profile: str) -> float:
    """Corpus score scaled so the null detector scores 0 and a perfect one 100 (NAB: perfect = TP weight × every
    labelled window; null = the never-firing detector's raw score)."""
    tp_w, _, fn_w = PROFILES[profile]
    null = -fn_w * sum(len(scored_windows(s)) for s in corpus)
    perfect = tp_w * sum(len(s.windows) for s in corpus)
    raw = sum(raw_score(s, detections.get(s.name, []), profile) for s in corpus)
    return 100.0 * (raw - null) / (perfect - null) if perfect != null else 0.0
