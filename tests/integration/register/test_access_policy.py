"""Deny by default on the running register (real database): every non-public route refuses anonymous, unknown and
too-weak callers, and a refused call changes nothing."""

from __future__ import annotations

from fastapi.routing import APIRoute

from services.register.policy import Access, route_access
from tests.integration.register.conftest import ADMIN, sensor_body


async def test_non_public_routes_refuse_callers_without_the_right_token(client, organisation):
    owner_token = (await client.post("/v1/owner-tokens", json={"organisation": organisation},
                                     headers=ADMIN)).json()["token"]
    owner = {"authorization": f"Bearer {owner_token}"}
    sensor_id = (await client.post("/v1/sensors", json=sensor_body(organisation), headers=owner)).json()["sensor_id"]
    before = (await client.get(f"/v1/sensors/{sensor_id}", headers=ADMIN)).json()
    values = {"{sensor_id}": sensor_id, "{key_id}": "sk_0", "{token_id}": "tok_0", "{request_id}": "1"}

    checked = 0
    for route in client.app.routes:
        assert isinstance(route, APIRoute), route
        level = route_access(route)
        if level is Access.PUBLIC:
            continue
        url = route.path
        for placeholder, value in values.items():
            url = url.replace(placeholder, value)
        for method in route.methods:
            for headers in ({}, {"authorization": "Bearer not-a-token"}, {"authorization": f"Token {owner_token}"}):
                response = await client.request(method, url, json={"status": "retired"}, headers=headers)
                assert response.status_code == 401, (method, route.path, headers, response.text)
            if level is Access.ADMIN:
                response = await client.request(method, url, json={"organisation": organisation}, headers=owner)
                assert response.status_code == 403, (method, route.path, response.text)
            checked += 1
    assert checked == 18  # GET /v1/rejections included

    after = (await client.get(f"/v1/sensors/{sensor_id}", headers=ADMIN)).json()
    assert after == before  # no refused call (the admin-only delete included) touched the sensor
    public = await client.get("/public/sensors.geojson")
    assert public.status_code == 200  # while the public view needs no token
