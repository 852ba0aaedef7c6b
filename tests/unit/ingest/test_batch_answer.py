"""The batch answer's shape with and without `Prefer: return=minimal` (pure: services/ingest/batch.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.common import Domain
from schemas.ingest_http import BatchResult
from schemas.rejections import RejectionReason
from services.ingest.batch import answer, prefers_minimal
from services.ingest.gate import Admitted, Rejected

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


def _admitted(seq: int) -> Admitted:
    return Admitted("traffic-1", seq, NOW, NOW, Domain.TRAFFIC, 1, {"intensity": 3.0}, NOW.isoformat(),
                    NOW.isoformat())


def _rejected(seq: int, reason: RejectionReason = RejectionReason.OUT_OF_RANGE) -> Rejected:
    return Rejected(reason, "intensity 1e9 outside declared range", "metrics.intensity", "traffic-1", seq)


@pytest.mark.parametrize(("header", "minimal"), [
    (None, False), ("", False), ("return=minimal", True), ("RETURN = Minimal", True), ('return="minimal"', True),
    ("respond-async, return=minimal", True), ("return=minimal; foo=bar", True), ("return=representation", False),
    ("handling=strict", False), ("returnminimal", False), ("return-minimal=1", False),
])
def test_prefer_header_is_read_as_rfc_7240_says(header, minimal):
    assert prefers_minimal(header) is minimal


def test_minimal_answer_keeps_status_and_counts_and_lists_only_the_rejected_with_their_index():
    outcomes = [_admitted(1), _rejected(2), _admitted(3), _rejected(4)]
    full, minimal = answer(outcomes), answer(outcomes, minimal=True)
    assert (full.status, minimal.status) == (207, 207)
    assert (full.preference_applied, minimal.preference_applied) == (None, "return=minimal")
    assert [o["index"] for o in full.body["outcomes"]] == [0, 1, 2, 3]
    assert minimal.body["outcomes"] == [o for o in full.body["outcomes"] if o["status"] == "rejected"]
    assert [o["index"] for o in minimal.body["outcomes"]] == [1, 3]
    assert (minimal.body["accepted"], minimal.body["rejected"]) == (2, 2)
    for result in (full, minimal):
        BatchResult.model_validate(result.body)  # the documented contract holds in both shapes


def test_minimal_answer_of_an_all_admitted_batch_is_200_with_no_outcomes():
    result = answer([_admitted(1), _admitted(2)], minimal=True)
    assert (result.status, result.body) == (200, {"accepted": 2, "rejected": 0, "outcomes": []})


def test_minimal_answer_of_an_all_rejected_batch_keeps_the_reasons_status_and_reason():
    result = answer([_rejected(1, RejectionReason.UNDECLARED_METRIC)] * 2, minimal=True)
    assert (result.status, result.body["reason"], len(result.body["outcomes"])) == (422, "UNDECLARED_METRIC", 2)
