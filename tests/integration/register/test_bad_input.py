"""Bad input against the real database: PATCH nulls / invalid values / unknown fields, malformed JSON, CSV naming.

Every refusal must be a 4xx naming the field at fault, and leave the sensor row, its version, its outbox and its
audit trail exactly as they were.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.common.db import create_pool
from tests.integration.register.conftest import ADMIN, sensor_body, unique_id

NOT_NULLABLE = ["owner_contact_name", "owner_contact_email", "metrics", "location", "location_description",
                "description", "purpose", "legal_ground", "personal_data", "retention_days", "reporting_interval_s",
                "rate_limit_per_minute"]


@pytest.fixture
async def snapshot(settings):
    """snapshot(sensor_id) -> (row, outbox rows, audit rows): everything a change would touch."""
    pool = await create_pool(settings.database_url, max_size=1)

    async def take(sensor_id: str) -> tuple:
        row = await pool.fetchrow("SELECT * FROM register_sensors WHERE sensor_id = $1", sensor_id)
        row = {k: v for k, v in row.items() if k != "published_version"}  # the relay's bookkeeping, asynchronous
        outbox = await pool.fetchval("SELECT count(*) FROM register_outbox WHERE sensor_id = $1", sensor_id)
        audit = await pool.fetchval("SELECT count(*) FROM register_audit_log WHERE sensor_id = $1", sensor_id)
        return row, outbox, audit

    yield take
    await pool.close()


async def _declared(client, organisation, **overrides) -> str:
    response = await client.post("/v1/sensors", json=sensor_body(organisation, **overrides), headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()["sensor_id"]


async def test_patch_with_an_explicit_null_is_refused_naming_the_field(client, organisation, snapshot):
    sensor_id = await _declared(client, organisation)
    before = await snapshot(sensor_id)
    for field in NOT_NULLABLE:
        response = await client.patch(f"/v1/sensors/{sensor_id}", json={field: None}, headers=ADMIN)
        assert (response.status_code, response.json()["field"]) == (422, field), response.text
        assert "null" in response.json()["detail"]
    assert await snapshot(sensor_id) == before
    assert before[0]["version"] == 1


async def test_an_empty_patch_is_refused_and_makes_no_new_version(client, organisation, snapshot):
    sensor_id = await _declared(client, organisation)
    before = await snapshot(sensor_id)
    response = await client.patch(f"/v1/sensors/{sensor_id}", json={}, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert (response.json()["reason"], response.json()["field"]) == ("EMPTY_UPDATE", None)
    assert await snapshot(sensor_id) == before


async def test_patch_null_clears_only_clearable_fields(client, organisation, snapshot):
    sensor_id = await _declared(client, organisation, privacy_statement_url="https://example.org/privacy")
    response = await client.patch(f"/v1/sensors/{sensor_id}", json={"active_until": None,
                                                                    "privacy_statement_url": None}, headers=ADMIN)
    assert response.status_code == 200, response.text
    row, _, _ = await snapshot(sensor_id)
    assert (row["active_until"], row["privacy_statement_url"], row["version"]) == (None, None, 2)


async def test_patch_with_invalid_values_or_unknown_fields_changes_nothing(client, organisation, snapshot):
    sensor_id = await _declared(client, organisation)
    await client.post(f"/v1/sensors/{sensor_id}/status", json={"status": "active"}, headers=ADMIN)
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    cases = [
        ({"metrics": [{"name": "fillingLevel", "unit": "%", "min": 0, "max": 100}]}, "metrics[0].name"),
        ({"metrics": [{"name": "intensity", "unit": "veh/h", "min": 10, "max": 1}]}, "metrics[0]"),
        ({"metrics": []}, "metrics"),
        ({"active_until": past}, "active_until"),
        ({"active_from": (datetime.now(UTC) + timedelta(days=400)).isoformat()}, "active_from"),
        ({"location": {"type": "Point", "coordinates": [4.9, 152.3]}}, "location.Point.coordinates"),
        ({"legal_ground": "because"}, "legal_ground"),
        ({"personal_data": True}, "privacy_statement_url"),
        ({"retention_days": -1}, "retention_days"),
        ({"rate_limit_per_minute": 0}, "rate_limit_per_minute"),
        ({"owner_contact_email": "not-an-email"}, "owner_contact_email"),
        ({"purpose": ""}, "purpose"),
        ({"surprise": 1}, "surprise"),
        ({"owner_organisation": "Someone else"}, "owner_organisation"),  # not changeable after declaring
        ({"domain": "energy"}, "domain"),
        ({"status": "retired"}, "status"),  # lifecycle goes through /status, not PATCH
    ]
    before = await snapshot(sensor_id)
    for body, field in cases:
        response = await client.patch(f"/v1/sensors/{sensor_id}", json=body, headers=ADMIN)
        assert (response.status_code, response.json()["field"]) == (422, field), (body, response.text)
    assert await snapshot(sensor_id) == before
    assert before[0]["version"] == 2


@pytest.mark.parametrize("content", [b'{"purpose": ', b'{"purpose": "x",}', b"purpose=x"])
async def test_a_malformed_json_body_names_the_body(client, organisation, snapshot, content):
    sensor_id = await _declared(client, organisation)
    before = await snapshot(sensor_id)
    headers = {**ADMIN, "content-type": "application/json"}
    for response in (await client.patch(f"/v1/sensors/{sensor_id}", content=content, headers=headers),
                     await client.post("/v1/sensors", content=content, headers=headers),
                     await client.post(f"/v1/sensors/{sensor_id}/credentials", content=content, headers=headers)):
        body = response.json()
        assert (response.status_code, body["field"], body["reason"]) == (422, "body", "MALFORMED"), response.text
        assert [e["field"] for e in body["errors"]] == ["body"]
    assert await snapshot(sensor_id) == before


async def test_csv_import_names_fields_as_the_json_api_does(client, organisation):
    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    header = ("sensor_id,owner_organisation,owner_contact_name,owner_contact_email,domain,metrics,longitude,latitude,"
              "purpose,legal_ground,personal_data,retention_days,reporting_interval_s,rate_limit_per_minute,"
              "active_until\n")

    def row(metrics: str = "intensity:veh/h:0:5000", longitude: str = "4.9", latitude: str = "52.37",
            interval: str = "60") -> tuple[str, str]:
        sensor_id = unique_id()
        return sensor_id, (f"{sensor_id},{organisation},Jan,jan@example.org,traffic,{metrics},{longitude},{latitude},"
                           f"counting,public_task,false,30,{interval},60,{until}\n")

    rows = [row(metrics="intensity:" + "u" * 40 + ":0:5000"),  # unit longer than 32: pydantic, nested in a list
            row(metrics="intensity:veh/h:10:1"),                # min > max: the metric itself
            row(metrics="intensity:veh/h:0:1;occupancy:%:x:1"),  # unreadable cell: second metric
            row(latitude="152.37"),
            row(longitude="", latitude=""),
            row(interval="-5")]
    response = await client.post("/v1/sensors/import", content=header + "".join(text for _, text in rows),
                                 headers={**ADMIN, "content-type": "text/csv"})
    report = response.json()
    assert [r.get("field") for r in report["rows"]] == [
        "metrics[0].unit", "metrics[0]", "metrics[1]", "location.Point.coordinates", "location",
        "reporting_interval_s"]
    assert report["imported"] == 0

    # The same mistakes sent as JSON are named the same way.
    for overrides, field in (({"metrics": [{"name": "intensity", "unit": "u" * 40, "min": 0, "max": 1}]},
                              "metrics[0].unit"),
                             ({"metrics": [{"name": "intensity", "unit": "veh/h", "min": 10, "max": 1}]},
                              "metrics[0]"),
                             ({"location": {"type": "Point", "coordinates": [4.9, 152.37]}},
                              "location.Point.coordinates"),
                             ({"reporting_interval_s": -5}, "reporting_interval_s")):
        response = await client.post("/v1/sensors", json=sensor_body(organisation, **overrides), headers=ADMIN)
        assert (response.status_code, response.json()["field"]) == (422, field), response.text
    listed = (await client.get("/v1/sensors", headers=ADMIN)).json()
    assert not {s["sensor_id"] for s in listed} & {sensor_id for sensor_id, _ in rows}
