"""The detector micro-benchmark `make bench` runs: every domain measured beside its own ceiling loop."""

from __future__ import annotations

from citystream.bench.runner import detector_benchmark


def test_every_domain_is_measured_beside_a_ceiling_it_cannot_beat():
    figures = detector_benchmark()
    assert set(figures) == {"traffic", "energy", "waste"}, figures
    for domain, measured in figures.items():
        # The ceiling loop does one EWMA per metric; the detector set does that and far more on the same readings.
        assert 0 < measured["ceiling_us_per_reading"] < measured["detectors_us_per_reading"], (domain, measured)
