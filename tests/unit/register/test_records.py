"""Topic record ⇄ register row: a rebuild keeps what the topic says and never makes up missing declaration facts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.register import SensorDetails, SensorRegistration
from services.register import records
from services.register.rebuild import IncompleteRecords, restore_database

NOW = datetime(2026, 6, 1, tzinfo=UTC)
ROW = {"sensor_id": "waste-r-1", "version": 3, "status": "active", "domain": "waste", "owner_organisation": "City",
       "owner_contact_name": "A", "owner_contact_email": "a@b.org", "contact_role": "Waste department, bins desk",
       "purpose": "bins", "legal_ground": "contract",
       "metrics": [{"name": "fillingLevel", "unit": "fraction", "min": 0.0, "max": 1.0}],
       "location": {"type": "Point", "coordinates": [4.9, 52.3]}, "location_description": "corner",
       "description": "", "personal_data": False, "privacy_statement_url": None, "retention_days": 10,
       "reporting_interval_s": 60.0, "rate_limit_per_minute": 5, "active_from": None, "active_until": None,
       "created_at": NOW, "updated_at": NOW}


def _record(**details) -> SensorRegistration:
    full = records.registration(ROW, [])
    return full.model_copy(update={"details": SensorDetails(**details) if details else None})


def test_a_complete_record_gives_back_the_row():
    row = records.row_from_registration(records.registration(ROW, []))
    assert row == ROW and records.missing_details(row) == []


def test_missing_details_stay_missing_and_are_named():
    row = records.row_from_registration(_record(owner_contact_name="A", owner_contact_email="a@b.org",
                                                location=ROW["location"], purpose="bins", retention_days=10))
    assert (row["legal_ground"], row["personal_data"]) == (None, None)  # not "public_task", not False
    assert records.missing_details(row) == ["legal_ground", "personal_data"]
    bare = records.row_from_registration(_record())
    assert records.missing_details(bare) == list(records.REQUIRED_DETAILS)
    assert (bare["description"], bare["location_description"]) == ("", "")  # optional text: none given


class _UntouchablePool:
    def acquire(self):
        raise AssertionError("restore wrote although a record was incomplete")


async def test_a_restore_with_an_incomplete_record_fails_naming_it_and_writes_nothing():
    register = {"waste-r-1": records.registration(ROW, []),
                "waste-r-2": _record(purpose="bins").model_copy(update={"sensor_id": "waste-r-2"})}
    with pytest.raises(IncompleteRecords, match="waste-r-2: owner_contact_name") as raised:
        await restore_database(_UntouchablePool(), register)
    assert set(raised.value.missing) == {"waste-r-2"} and "legal_ground" in raised.value.missing["waste-r-2"]
    assert raised.value.retriable is False
