"""NAB scoring rules: null = 0, a left-edge detection ≈ perfect, false positives cost, probation is ignored."""

from __future__ import annotations

import pytest

from services.anomaly import nab


def series(windows=((500, 599),)):
    return nab.Series("s.csv", [float(i) for i in range(1000)], [0.0] * 1000, list(windows))


def test_null_scores_zero_and_left_edge_detection_scores_100():
    corpus = [series()]
    assert nab.normalised(corpus, {}, "standard") == 0.0
    assert nab.normalised(corpus, {"s.csv": [500]}, "standard") == pytest.approx(100.0)


def test_later_detection_earns_less_and_false_positives_cost():
    corpus = [series()]
    early = nab.normalised(corpus, {"s.csv": [510]}, "standard")
    late = nab.normalised(corpus, {"s.csv": [590]}, "standard")
    assert 100.0 > early > late > 0.0
    with_fp = nab.normalised(corpus, {"s.csv": [510, 300]}, "standard")
    assert with_fp < early
    assert nab.normalised(corpus, {"s.csv": [510, 300]}, "reward_low_fp") < with_fp


def test_probationary_rows_are_not_scored():
    corpus = [series()]
    assert series().probation == 150
    assert nab.normalised(corpus, {"s.csv": [10, 140]}, "standard") == 0.0


def test_scoring_follows_nabs_sweeper():
    # A left-edge detection earns exactly the TP weight (NAB divides by the left-edge sigmoid).
    one = [series()]
    assert nab.raw_score(one[0], [500], "standard") == pytest.approx(1.0)
    assert nab.raw_score(one[0], [550], "standard") == pytest.approx(nab.scaled_sigmoid(-50 / 100) / nab.MAX_TP)
    # A detection three window widths after a window costs the full FP weight (NAB: position >= 3.0).
    assert nab.raw_score(one[0], [500, 599 + 3 * 99], "standard") == pytest.approx(1.0 - 0.11)
    # A window wholly inside the probationary period is neither scored nor missed.
    early = [series(windows=((10, 100), (500, 599)))]
    assert nab.normalised(early, {"s.csv": [500]}, "standard") == pytest.approx(100.0 * 2 / 3)
    assert nab.raw_score(early[0], [], "standard") == pytest.approx(-1.0)
