"""READINGS counted per batch (services/ingest/metrics.count_outcomes) as labelling each outcome would count it."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from prometheus_client import REGISTRY

from schemas.common import Domain
from schemas.rejections import RejectionReason
from services.ingest import metrics
from services.ingest.gate import Admitted, Rejected
from services.ingest.register_state import RegisterState
from tests.support.ingest_factories import new_credential, registration

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


def _sample(labels: tuple[str, str, str, str]) -> float:
    path, outcome, reason, domain = labels
    return REGISTRY.get_sample_value("citystream_ingest_readings_total", {
        "path": path, "outcome": outcome, "reason": reason, "domain": domain}) or 0.0


def test_a_batch_is_counted_as_labelling_every_outcome_counts_it():
    state = RegisterState()
    _, key_hash = new_credential()
    state.put(registration("energy-count-1", key_hash, domain=Domain.ENERGY))
    admitted = [Admitted(f"s-{i}", i, NOW, NOW, domain, 1, {}, "", "")
                for i, domain in enumerate([Domain.TRAFFIC] * 3 + [Domain.WASTE] * 2)]
    rejected = [Rejected(RejectionReason.OUT_OF_RANGE, "too high", "metrics.power", "energy-count-1", 7),
                Rejected(RejectionReason.UNKNOWN_SENSOR, "not in the register", "sensor_id", "nobody", 8),
                Rejected(RejectionReason.UNKNOWN_SENSOR, "not in the register", "sensor_id", "nobody", 9)]
    outcomes = [admitted[0], rejected[0], *admitted[1:], *rejected[1:]]
    expected = Counter(("test-path", *metrics.outcome_labels(o, state)) for o in outcomes)
    assert expected == {("test-path", "admitted", "", "traffic"): 3, ("test-path", "admitted", "", "waste"): 2,
                        ("test-path", "rejected", "OUT_OF_RANGE", "energy"): 1,
                        ("test-path", "rejected", "UNKNOWN_SENSOR", ""): 2}
    before = {labels: _sample(labels) for labels in expected}
    metrics.count_outcomes("test-path", outcomes, state)
    assert {labels: _sample(labels) - before[labels] for labels in expected} == expected
