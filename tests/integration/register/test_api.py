"""Register HTTP API against the real database: bad input, roles, credentials, public view, CSV, removal requests."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from services.common.db import create_pool
from tests.integration.register.conftest import ADMIN, sensor_body, unique_id


async def _owner(client, organisation) -> dict:
    response = await client.post("/v1/owner-tokens", json={"organisation": organisation}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return {"authorization": f"Bearer {response.json()['token']}"}


async def _count_rows(settings, sensor_id) -> tuple[int, int, int]:
    pool = await create_pool(settings.database_url, max_size=1)
    try:
        return (await pool.fetchval("SELECT count(*) FROM register_sensors WHERE sensor_id = $1", sensor_id),
                await pool.fetchval("SELECT count(*) FROM register_outbox WHERE sensor_id = $1", sensor_id),
                await pool.fetchval("SELECT count(*) FROM register_audit_log WHERE sensor_id = $1", sensor_id))
    finally:
        await pool.close()


async def test_bad_input_names_the_field_and_writes_nothing(client, settings, organisation):
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    cases = [
        ({"domain": "weather"}, 422, "domain"),
        ({"metrics": [{"name": "fillingLevel", "unit": "%", "min": 0, "max": 100}]}, 422, "metrics[0].name"),
        ({"metrics": [{"name": "intensity", "unit": "veh/h", "min": 10, "max": 1}]}, 422, "metrics[0]"),
        ({"active_until": past}, 422, "active_until"),
        ({"location": {"type": "Point", "coordinates": [4.9, 152.3]}}, 422, "location.Point.coordinates"),
        ({"location": {"type": "Polygon", "coordinates": [[[4.9, 52.3], [4.91, 52.3], [4.9, 52.31]]]}}, 422,
         "location.Polygon.coordinates"),
        ({"legal_ground": "because"}, 422, "legal_ground"),
        ({"personal_data": True}, 422, "privacy_statement_url"),
        ({"surprise": 1}, 422, "surprise"),
    ]
    for overrides, status, field in cases:
        body = sensor_body(organisation, **overrides)
        response = await client.post("/v1/sensors", json=body, headers=ADMIN)
        assert (response.status_code, response.json()["field"]) == (status, field), (overrides, response.text)
        assert await _count_rows(settings, body["sensor_id"]) == (0, 0, 0)

    body = sensor_body(organisation)
    assert (await client.post("/v1/sensors", json=body, headers=ADMIN)).status_code == 201
    duplicate = await client.post("/v1/sensors", json={**body, "purpose": "other"}, headers=ADMIN)
    assert (duplicate.status_code, duplicate.json()["field"], duplicate.json()["reason"]) == (
        409, "sensor_id", "DUPLICATE_SENSOR")
    assert await _count_rows(settings, body["sensor_id"]) == (1, 1, 1)

    oversize = await client.post("/v1/sensors", content=b"{" + b" " * (1024 * 1024 + 10) + b"}", headers={
        **ADMIN, "content-type": "application/json"})
    assert (oversize.status_code, oversize.json()["reason"], oversize.json()["field"]) == (
        413, "PAYLOAD_TOO_LARGE", "body")


async def test_roles_deny_by_default(client, organisation):
    owner = await _owner(client, organisation)
    other = await _owner(client, organisation + " other")
    assert (await client.get("/v1/sensors")).status_code == 401
    assert (await client.get("/v1/sensors", headers={"authorization": "Bearer nope"})).status_code == 401
    forbidden = await client.post("/v1/sensors", json=sensor_body(organisation + " else"), headers=owner)
    assert (forbidden.status_code, forbidden.json()["field"]) == (403, "owner_organisation")

    sensor_id = (await client.post("/v1/sensors", json=sensor_body(organisation), headers=owner)).json()["sensor_id"]
    assert (await client.get(f"/v1/sensors/{sensor_id}", headers=other)).status_code == 403
    assert (await client.post(f"/v1/sensors/{sensor_id}/status", json={"status": "active"},
                              headers=other)).status_code == 403
    assert (await client.delete(f"/v1/sensors/{sensor_id}", headers=owner)).status_code == 403
    assert (await client.post("/v1/owner-tokens", json={"organisation": "x"}, headers=owner)).status_code == 403
    assert [s["sensor_id"] for s in (await client.get("/v1/sensors", headers=owner)).json()] == [sensor_id]
    assert (await client.get("/v1/sensors", headers=other)).json() == []


async def test_lifecycle_rules(client, organisation):
    sensor_id = (await client.post("/v1/sensors", json=sensor_body(organisation), headers=ADMIN)).json()["sensor_id"]
    steps = [("suspended", 409), ("active", 200), ("suspended", 200), ("active", 200), ("retired", 200),
             ("active", 409)]
    for target, status in steps:
        response = await client.post(f"/v1/sensors/{sensor_id}/status", json={"status": target}, headers=ADMIN)
        assert response.status_code == status, (target, response.text)
    view = (await client.get(f"/v1/sensors/{sensor_id}", headers=ADMIN)).json()
    assert (view["status"], view["version"], view["may_publish"]) == ("retired", 5, False)
    patch = await client.patch(f"/v1/sensors/{sensor_id}", json={"purpose": "x"}, headers=ADMIN)
    assert (patch.status_code, patch.json()["reason"]) == (409, "SENSOR_RETIRED")


async def test_passing_active_until_expires_without_anyone_acting(client, clock, organisation):
    until = datetime.now(UTC) + timedelta(hours=1)
    body = sensor_body(organisation, active_until=until.isoformat())
    sensor_id = (await client.post("/v1/sensors", json=body, headers=ADMIN)).json()["sensor_id"]
    await client.post(f"/v1/sensors/{sensor_id}/status", json={"status": "active"}, headers=ADMIN)
    assert (await client.get(f"/v1/sensors/{sensor_id}", headers=ADMIN)).json()["may_publish"] is True
    expiring = (await client.get("/v1/sensors/expiring", params={"days": 1}, headers=ADMIN)).json()
    assert sensor_id in [s["sensor_id"] for s in expiring]

    clock.offset = timedelta(hours=2)
    view = (await client.get(f"/v1/sensors/{sensor_id}", headers=ADMIN)).json()
    assert (view["status"], view["expired"], view["may_publish"]) == ("active", True, False)
    expired = (await client.get("/v1/sensors", params={"expired": "true"}, headers=ADMIN)).json()
    assert sensor_id in [s["sensor_id"] for s in expired]
    again = await client.post(f"/v1/sensors/{sensor_id}/status", json={"status": "suspended"}, headers=ADMIN)
    assert again.status_code == 200
    reactivate = await client.post(f"/v1/sensors/{sensor_id}/status", json={"status": "active"}, headers=ADMIN)
    assert (reactivate.status_code, reactivate.json()["field"]) == (422, "active_until")


async def test_expiring_lists_only_sensors_within_the_horizon(client, organisation):
    owner = await _owner(client, organisation)
    soon, later = (sensor_body(organisation, active_until=(datetime.now(UTC) + timedelta(days=d)).isoformat())
                   for d in (5, 40))
    for body in (soon, later):
        assert (await client.post("/v1/sensors", json=body, headers=owner)).status_code == 201
    within_10 = [s["sensor_id"] for s in (await client.get("/v1/sensors/expiring", params={"days": 10},
                                                           headers=owner)).json()]
    within_60 = [s["sensor_id"] for s in (await client.get("/v1/sensors/expiring", params={"days": 60},
                                                           headers=owner)).json()]
    assert within_10 == [soon["sensor_id"]]
    assert sorted(within_60) == sorted([soon["sensor_id"], later["sensor_id"]])


async def test_credentials_rotate_with_overlap_and_revoke(client, organisation):
    ids = []
    for _ in range(2):
        response = await client.post("/v1/sensors", json=sensor_body(organisation), headers=ADMIN)
        ids.append(response.json()["sensor_id"])
    first = (await client.post(f"/v1/sensors/{ids[0]}/credentials", headers=ADMIN)).json()
    second = (await client.post(f"/v1/sensors/{ids[0]}/credentials", json={"overlap_seconds": 600},
                                headers=ADMIN)).json()
    assert second["replaced_not_after"] is not None
    assert len(second["credential"].split(".", 1)[1]) >= 43  # 256 bits, urlsafe base64
    view = (await client.get(f"/v1/sensors/{ids[0]}", headers=ADMIN)).json()
    by_key = {c["key_id"]: c for c in view["credentials"]}
    assert by_key[first["key_id"]]["not_after"] is not None and by_key[second["key_id"]]["not_after"] is None
    assert first["credential"] not in str(view) and "secret_sha256" not in str(view)

    gateway = (await client.post("/v1/gateway-credentials", json={"sensor_ids": ids}, headers=ADMIN)).json()
    for sensor_id in ids:
        keys = [c["key_id"] for c in (await client.get(f"/v1/sensors/{sensor_id}", headers=ADMIN)).json()[
            "credentials"]]
        assert gateway["key_id"] in keys
    assert (await client.delete(f"/v1/credentials/{first['key_id']}", headers=ADMIN)).status_code == 204
    view = (await client.get(f"/v1/sensors/{ids[0]}", headers=ADMIN)).json()
    assert sorted(c["key_id"] for c in view["credentials"]) == sorted([second["key_id"], gateway["key_id"]])
    assert view["version"] == 5  # declare, issue, rotate, gateway, revoke
    audit = (await client.get(f"/v1/sensors/{ids[0]}/audit", headers=ADMIN)).json()
    assert [a["action"] for a in audit][:2] == ["credential:revoke", "credential:gateway"]
    assert hashlib.sha256(first["credential"].split(".", 1)[1].encode()).hexdigest() not in str(audit)

    body = sensor_body(organisation + " two")
    del body["sensor_id"]  # the register generates one
    foreign = (await client.post("/v1/sensors", json=body, headers=ADMIN)).json()["sensor_id"]
    assert foreign.startswith("traffic-org-")
    mixed = await client.post("/v1/gateway-credentials", json={"sensor_ids": [ids[1], foreign]}, headers=ADMIN)
    assert (mixed.status_code, mixed.json()["field"]) == (422, "sensor_ids")


async def test_public_geojson_and_map_show_no_secrets_or_contacts(client, organisation):
    body = sensor_body(organisation, owner_contact_email="private.person@example.org",
                       owner_contact_name="Private Person", contact_role="Traffic department, sensor desk")
    sensor_id = (await client.post("/v1/sensors", json=body, headers=ADMIN)).json()["sensor_id"]
    draft = (await client.post("/v1/sensors", json=sensor_body(organisation), headers=ADMIN)).json()["sensor_id"]
    credential = (await client.post(f"/v1/sensors/{sensor_id}/credentials", headers=ADMIN)).json()["credential"]
    await client.post(f"/v1/sensors/{sensor_id}/status", json={"status": "active"}, headers=ADMIN)

    geojson = await client.get("/public/sensors.geojson")
    page = await client.get("/map")
    assert geojson.status_code == page.status_code == 200
    features = {f["id"]: f for f in geojson.json()["features"]}
    assert sensor_id in features and draft not in features
    properties = features[sensor_id]["properties"]
    assert properties["owner_organisation"] == organisation and properties["legal_ground"] == "public_task"
    assert properties["contact_role"] == "Traffic department, sensor desk"  # a role is public, the person is not
    bad = await client.patch(f"/v1/sensors/{sensor_id}", json={"contact_role": "Desk\nJan"}, headers=ADMIN)
    assert (bad.status_code, bad.json()["field"]) == (422, "contact_role")
    cleared = await client.patch(f"/v1/sensors/{sensor_id}", json={"contact_role": None}, headers=ADMIN)
    assert cleared.status_code == 200 and cleared.json()["contact_role"] is None
    key_id, secret = credential.split(".", 1)
    for text in (geojson.text, page.text):
        for forbidden in ("private.person@example.org", "Private Person", secret, key_id,
                          hashlib.sha256(secret.encode()).hexdigest(), "owner_contact", "secret_sha256"):
            assert forbidden not in text


async def test_csv_import_reports_each_row_and_export_round_trips(client, organisation):
    good = sensor_body(organisation)
    header = ("sensor_id,owner_organisation,owner_contact_name,owner_contact_email,domain,metrics,longitude,latitude,"
              "purpose,legal_ground,personal_data,retention_days,reporting_interval_s,rate_limit_per_minute,"
              "active_until\n")
    rows = [
        f"{good['sensor_id']},{organisation},Jan,jan@example.org,traffic,intensity:veh/h:0:5000,4.9,52.37,"
        f"counting,public_task,false,30,60,60,{good['active_until']}\n",
        f"{unique_id()},{organisation},Jan,jan@example.org,traffic,fillingLevel:%:0:100,4.9,52.37,"
        f"counting,public_task,false,30,60,60,{good['active_until']}\n",
        f"{unique_id()},{organisation},Jan,jan@example.org,traffic,intensity:veh/h:0:5000,east,52.37,"
        f"counting,public_task,false,30,60,60,{good['active_until']}\n",
        f"{unique_id()},{organisation},only-three-columns\n",
    ]
    response = await client.post("/v1/sensors/import", content=header + "".join(rows),
                                 headers={**ADMIN, "content-type": "text/csv"})
    report = response.json()
    assert (report["imported"], report["failed"]) == (1, 3)
    assert [(r["line"], r["ok"], r.get("field")) for r in report["rows"]] == [
        (2, True, None), (3, False, "metrics[0].name"), (4, False, "longitude"), (5, False, "row")]

    exported = (await client.get("/v1/sensors/export.csv", headers=ADMIN)).text
    line = next(row for row in exported.splitlines() if row.startswith(good["sensor_id"]))
    assert "intensity:veh/h:0.0:5000.0" in line and ",draft,1" in line


async def test_removal_requests_flow(client, organisation):
    owner = await _owner(client, organisation)
    other = await _owner(client, organisation + " other")
    sensor_id = (await client.post("/v1/sensors", json=sensor_body(organisation), headers=owner)).json()["sensor_id"]
    hidden = await client.post("/public/removal-requests", json={"sensor_id": sensor_id, "reason": "camera here"})
    assert (hidden.status_code, hidden.json()["field"]) == (404, "sensor_id")  # drafts are not public
    await client.post(f"/v1/sensors/{sensor_id}/status", json={"status": "active"}, headers=owner)
    created = await client.post("/public/removal-requests", json={
        "sensor_id": sensor_id, "reason": "It films my window", "requester_email": "resident@example.org"})
    assert created.status_code == 201
    request_id = created.json()["request_id"]
    assert [r["request_id"] for r in (await client.get("/v1/removal-requests", headers=owner)).json()] == [request_id]
    assert (await client.get("/v1/removal-requests", headers=other)).json() == []
    assert (await client.post(f"/v1/removal-requests/{request_id}/close", json={"resolution": "no"},
                              headers=other)).status_code == 403
    closed = await client.post(f"/v1/removal-requests/{request_id}/close",
                               json={"resolution": "Sensor moved away from the window"}, headers=owner)
    assert closed.json()["status"] == "closed"
    assert (await client.get("/v1/removal-requests", params={"status": "open"}, headers=owner)).json() == []
    assert "resident@example.org" not in (await client.get("/public/sensors.geojson")).text


async def test_ops_endpoints_and_openapi(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "checks": {
        "database": {"ok": True, "detail": "answering"}, "kafka": {"ok": True, "detail": "answering"}}}
    assert "citystream_register_changes_total" in (await client.get("/metrics")).text
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"/v1/sensors", "/public/sensors.geojson", "/v1/sensors/expiring", "/map"} <= set(paths)


async def test_an_area_sensor_declared_through_the_api_is_a_polygon_in_the_public_geojson(client, organisation):
    ring = [[4.88, 52.36], [4.90, 52.36], [4.90, 52.38], [4.88, 52.38], [4.88, 52.36]]
    body = sensor_body(organisation, location={"type": "Polygon", "coordinates": [ring]},
                       location_description="Route of a waste collection truck, Centrum")
    response = await client.post("/v1/sensors", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    sensor_id = response.json()["sensor_id"]
    assert sensor_id not in {f["id"] for f in (await client.get("/public/sensors.geojson")).json()["features"]}

    await client.post(f"/v1/sensors/{sensor_id}/status", json={"status": "active"}, headers=ADMIN)
    features = {f["id"]: f for f in (await client.get("/public/sensors.geojson")).json()["features"]}
    assert features[sensor_id]["geometry"] == {"type": "Polygon", "coordinates": [ring]}
    assert features[sensor_id]["properties"]["location_description"] == "Route of a waste collection truck, Centrum"
