"""The public live status comes from the register status and the last reading's age, nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.register.live_status import LiveStatus, live_status

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("register_status", "age", "expected"), [
    ("active", timedelta(seconds=179), (LiveStatus.REPORTING, 120)),  # within 3 intervals of 60 s
    ("active", timedelta(seconds=181), (LiveStatus.SILENT, 180)),
    ("active", None, (LiveStatus.SILENT, None)),  # nothing stored in the look-back window
    ("suspended", timedelta(seconds=5), (LiveStatus.SUSPENDED, 0)),  # suspension wins over fresh readings
    ("retired", timedelta(days=2), (LiveStatus.RETIRED, 172_800)),
])
def test_live_status(register_status, age, expected):
    last = None if age is None else NOW - age
    assert live_status(register_status=register_status, reporting_interval_s=60, last_observed_at=last,
                       now=NOW) == expected
