"""The ops page's own routes: its settings, a sensor's public register record (never contact details), assets."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from schemas.register import MetricDeclaration, SensorDetails, SensorRegistration
from services.api.app import create_app
from services.api.settings import ApiSettings
from services.common import jsonwire

VIEWER = {"Authorization": "Bearer v"}


def make_app(**settings):
    app = create_app(ApiSettings(api_tokens="v:viewer", **settings))
    record = SensorRegistration(
        sensor_id="waste-ams-0007", version=3, status="active", domain="waste", owner_organisation="Gemeente Amsterdam",
        metrics=(MetricDeclaration(name="fillingLevel", unit="fraction", min=0, max=1),), rate_limit_per_minute=60,
        reporting_interval_s=300, updated_at=datetime.now(UTC), location=(4.8952, 52.3702),
        details=SensorDetails(owner_contact_name="Jan", owner_contact_email="jan@example.org",
                              purpose="Empty bins before they overflow", legal_ground="public_task", personal_data=False))
    app.state.api.directory.apply(record.sensor_id.encode(), jsonwire.dumps(record))
    return app


async def test_register_record_is_public_fields_only():
    app = make_app(api_register_url="https://register.example.org/")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        answer = await client.get("/v1/ops/sensors/waste-ams-0007", headers=VIEWER)
        missing = await client.get("/v1/ops/sensors/waste-ams-9999", headers=VIEWER)
        anonymous = await client.get("/v1/ops/sensors/waste-ams-0007")
    assert answer.status_code == 200
    body = answer.json()
    assert (body["owner_organisation"], body["purpose"], body["reporting_interval_s"]) == (
        "Gemeente Amsterdam", "Empty bins before they overflow", 300)
    assert body["metrics"] == [{"name": "fillingLevel", "unit": "fraction", "min": 0, "max": 1}]
    assert body["register_url"] == "https://register.example.org/map#sensor=waste-ams-0007"
    assert "jan@example.org" not in answer.text and "Jan" not in answer.text
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "SENSOR_NOT_FOUND"
    assert anonymous.status_code == 401


async def test_config_names_the_basemap_only_when_set_and_assets_are_served():
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=make_app()), base_url="http://api") as client:
        assert (await client.get("/v1/ops/config", headers=VIEWER)).json() == {
            "tile_url": None, "tile_attribution": None, "register_url": None}
        for path, kind in (("/ops/vendor/map.js", "text/javascript"), ("/ops/vendor/chart.css", "text/css"),
                           ("/favicon.ico", "image/svg+xml")):
            response = await client.get(path)
            assert response.status_code == 200 and response.headers["content-type"].startswith(kind), path
        assert (await client.get("/ops/vendor/../settings.py")).status_code == 404
        assert (await client.get("/ops/vendor/LICENSE.leaflet.txt")).status_code == 404  # only the bundles
    app = make_app(api_map_tile_url="https://tiles.example.org/{z}/{x}/{y}.png", api_map_tile_attribution="© OSM")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        config = (await client.get("/v1/ops/config", headers=VIEWER)).json()
    assert config["tile_url"] == "https://tiles.example.org/{z}/{x}/{y}.png" and config["tile_attribution"] == "© OSM"
