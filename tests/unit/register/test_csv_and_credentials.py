"""Pure helpers: CSV rows to sensor bodies and back, credential material, public features, API models."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from services.register import csvio, records
from services.register.credentials import new_secret, split_credential, verify_secret
from services.register.http_errors import field_path
from services.register.models import AreaLocation, PointLocation, SensorCreate, SensorUpdate

HEADER = ("sensor_id,owner_organisation,owner_contact_name,owner_contact_email,domain,metrics,longitude,latitude,"
          "purpose,legal_ground,personal_data,retention_days,reporting_interval_s,rate_limit_per_minute\n")


def test_csv_rows_become_bodies_or_per_row_errors():
    text = HEADER + (
        "waste-a-1,City,Jan,j@x.org,waste,fillingLevel:fraction:0:1;temperature:°C:-30:80,4.9,52.3,bins,"
        "public_task,no,30,600,10\n"
        "waste-a-2,City,Jan,j@x.org,waste,fillingLevel:fraction:zero:1,4.9,52.3,bins,public_task,no,30,600,10\n"
        "waste-a-3,City,Jan,j@x.org,waste,fillingLevel:fraction:0:1,4.9,52.3,bins,public_task,maybe,30,600,10\n"
        "waste-a-4,City,,j@x.org,waste,fillingLevel:fraction:0:1,4.9,52.3,bins,public_task,no,30,600,10\n"
        "waste-a-5,City\n"
    )
    results = list(csvio.parse(text))
    line, body = results[0]
    assert line == 2 and body["metrics"][1] == {"name": "temperature", "unit": "°C", "min": -30.0, "max": 80.0}
    assert body["location"] == {"type": "Point", "coordinates": [4.9, 52.3]} and body["personal_data"] is False
    errors = [(r.line, r.field) for _, r in results[1:]]
    assert errors == [(3, "metrics[0]"), (4, "personal_data"), (5, "owner_contact_name"), (6, "row")]


def test_a_bad_header_is_one_error():
    results = list(csvio.parse("sensor_id,colour\nx,red\n"))
    assert len(results) == 1 and results[0][1].line == 1


def test_export_is_importable():
    row = {"sensor_id": "energy-b-1", "owner_organisation": "Grid", "owner_contact_name": "A",
           "owner_contact_email": "a@b.org", "domain": "energy", "purpose": "load",
           "metrics": [{"name": "voltage", "unit": "V", "min": 200.0, "max": 260.0}],
           "location": {"type": "Polygon", "coordinates": [[[4.9, 52.3], [4.91, 52.3], [4.91, 52.31], [4.9, 52.3]]]},
           "legal_ground": "contract", "personal_data": False, "retention_days": 10, "reporting_interval_s": 60.0,
           "rate_limit_per_minute": 5, "active_until": datetime(2030, 1, 1, tzinfo=UTC), "status": "active",
           "version": 3}
    [(_, body)] = list(csvio.parse(csvio.export([row])))
    assert body["location"] == row["location"] and body["metrics"] == row["metrics"]
    assert body["active_until"] == "2030-01-01T00:00:00+00:00"


def test_credentials_have_256_bit_secrets_and_verify_by_hash():
    fresh = new_secret("sk")
    key_id, secret = split_credential(fresh.credential)
    assert key_id == fresh.key_id and len(secret) >= 43
    assert fresh.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert verify_secret(secret, fresh.secret_sha256) and not verify_secret(secret + "x", fresh.secret_sha256)
    assert split_credential("no-dot") is None and new_secret("sk").secret != fresh.secret


def test_public_feature_has_no_contact_fields():
    row = {"sensor_id": "t-1-x", "owner_organisation": "City", "domain": "traffic", "purpose": "p",
           "legal_ground": "public_task", "personal_data": False, "privacy_statement_url": None,
           "active_until": None, "status": "active", "location_description": "", "description": "",
           "retention_days": 1, "metrics": [{"name": "intensity", "unit": "veh/h", "min": 0, "max": 1}],
           "location": {"type": "Point", "coordinates": [4.9, 52.3]}, "owner_contact_email": "secret@x.org",
           "owner_contact_name": "Hidden", "contact_role": "Traffic department, sensor desk"}
    feature = records.public_feature(row, datetime.now(UTC))
    assert "secret@x.org" not in str(feature) and "Hidden" not in str(feature)
    assert feature["properties"]["metrics"] == [{"name": "intensity", "unit": "veh/h"}]
    assert feature["properties"]["contact_role"] == "Traffic department, sensor desk"  # a role is public


@pytest.mark.parametrize("role", ["Traffic department, sensor desk", "sensors@amsterdam.example",
                                  "Afval & Grondstoffen"])
def test_a_public_contact_role_is_optional_one_line_text(role):
    body = {"owner_organisation": "City", "domain": "traffic", "owner_contact_name": "Jan",
            "owner_contact_email": "jan@example.org", "metrics": [{"name": "intensity", "unit": "veh/h", "min": 0,
                                                                    "max": 1}],
            "location": {"type": "Point", "coordinates": [4.9, 52.3]}, "purpose": "p", "legal_ground": "public_task",
            "personal_data": False, "retention_days": 1, "reporting_interval_s": 60, "rate_limit_per_minute": 60}
    assert SensorCreate.model_validate(body).contact_role is None
    assert SensorCreate.model_validate({**body, "contact_role": role}).contact_role == role
    for bad in ("", " ", "x", "Desk\nsecond line", "a" * 121):
        with pytest.raises(ValidationError, match="contact_role"):
            SensorCreate.model_validate({**body, "contact_role": bad})
    assert SensorUpdate.model_validate({"contact_role": None}).contact_role is None  # null clears it


def test_locations_check_coordinates():
    PointLocation(type="Point", coordinates=(4.9, 52.3))
    with pytest.raises(ValidationError, match="latitude"):
        PointLocation(type="Point", coordinates=(4.9, 95))
    with pytest.raises(ValidationError, match="longitude"):
        PointLocation(type="Point", coordinates=(190, 52))
    with pytest.raises(ValidationError, match="end where it starts"):
        AreaLocation(type="Polygon", coordinates=(((4.9, 52.3), (4.91, 52.3), (4.91, 52.31), (4.92, 52.3)),))


def test_error_field_paths_read_like_the_body():
    assert field_path(("body", "metrics", 0, "name")) == "metrics[0].name"
    assert field_path(("query", "days")) == "days"
    assert field_path(("body",)) == "body"


def test_a_row_without_a_location_is_a_per_row_error_on_import_and_export():
    text = HEADER + (
        "waste-c-1,City,Jan,j@x.org,waste,fillingLevel:fraction:0:1,,,bins,public_task,no,30,600,10\n"
        "waste-c-2,City,Jan,j@x.org,waste,fillingLevel:fraction:0:1,4.9,north,bins,public_task,no,30,600,10\n"
        "waste-c-3,City,Jan,j@x.org,waste,fillingLevel:fraction:0:1,4.9,52.3,bins,public_task,no,30,600,10\n"
    )
    results = list(csvio.parse(text))
    assert [(line, getattr(parsed, "field", None)) for line, parsed in results] == [
        (2, "location"), (3, "latitude"), (4, None)]

    row = {"sensor_id": "waste-c-4", "owner_organisation": "City", "owner_contact_name": "A",
           "owner_contact_email": "a@b.org", "domain": "waste", "purpose": "bins", "location": None,
           "metrics": [{"name": "fillingLevel", "unit": "fraction", "min": 0.0, "max": 1.0}],
           "legal_ground": "public_task", "personal_data": False, "retention_days": 10,
           "reporting_interval_s": 60.0, "rate_limit_per_minute": 5, "status": "active", "version": 1}
    exported = csvio.export([row, {**row, "sensor_id": "waste-c-5", "location": {"type": "Point",
                                                                               "coordinates": [4.9, 52.3]}}])
    assert [(line, getattr(parsed, "field", None)) for line, parsed in csvio.parse(exported)] == [
        (2, "location"), (3, None)]
