"""The NGSI-LD view against real data: sensors declared on the register topic, readings in TimescaleDB; each
sensor's latest state comes back as its Smart Data Models entity (JSON-LD), by id and by type."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from schemas.register import MetricDeclaration, SensorRegistration
from services.api.ngsi_ld import CORE_CONTEXT
from tests.integration.api.support import VIEWER, insert_readings, register_sensors, running_api

JSON_LD = "application/ld+json"


def _sensor(domain: str, metrics: dict[str, str], location=(4.8952, 52.3702)) -> SensorRegistration:
    return SensorRegistration(
        sensor_id=f"{domain}-ngsi-{uuid.uuid4().hex[:8]}", version=1, status="active", domain=domain,
        owner_organisation="Gemeente Amsterdam", rate_limit_per_minute=60, reporting_interval_s=60,
        metrics=tuple(MetricDeclaration(name=name, unit=unit, min=0, max=10_000) for name, unit in metrics.items()),
        updated_at=datetime.now(UTC), location=location)


async def test_latest_state_as_smart_data_models_entities(settings):
    traffic = _sensor("traffic", {"intensity": "veh/h", "averageVehicleSpeed": "km/h"})
    waste = _sensor("waste", {"fillingLevel": "fraction", "temperature": "°C"}, location=(4.90, 52.36))
    energy = _sensor("energy", {"activePower": "kW", "voltage": "V"}, location=None)
    silent = _sensor("traffic", {"intensity": "veh/h"})
    now = datetime.now(UTC).replace(microsecond=0)
    older, newer = now - timedelta(minutes=10), now - timedelta(minutes=1)
    await insert_readings(settings.database_url, traffic.sensor_id, "traffic", [
        (1, older, {"intensity": 100.0, "averageVehicleSpeed": 50.0}),
        (2, newer, {"intensity": 420.0, "averageVehicleSpeed": 38.5})])
    await insert_readings(settings.database_url, waste.sensor_id, "waste", [(1, newer, {"fillingLevel": 0.93})])
    await insert_readings(settings.database_url, energy.sensor_id, "energy",
                          [(1, newer, {"activePower": 12.5, "voltage": 231.0})])
    await register_sensors(settings, [traffic, waste, energy, silent])

    async with running_api(settings) as (base, _), httpx.AsyncClient(base_url=base, headers=VIEWER) as client:
        entity_id = f"urn:ngsi-ld:TrafficFlowObserved:{traffic.sensor_id}"
        response = await client.get(f"/ngsi-ld/v1/entities/{entity_id}")
        assert response.status_code == 200 and response.headers["content-type"] == JSON_LD
        body = response.json()
        observed = newer.isoformat().replace("+00:00", "Z")
        assert body["id"] == entity_id and body["type"] == "TrafficFlowObserved"
        assert body["@context"][-1] == CORE_CONTEXT and "dataModel.Transportation" in body["@context"][0]
        assert body["location"] == {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [4.8952, 52.3702]}}
        assert body["averageVehicleSpeed"] == {"type": "Property", "value": 38.5, "observedAt": observed,
                                               "unitCode": "KMH"}
        assert body["intensity"] == {"type": "Property", "value": 420.0, "observedAt": observed}  # no common code
        assert body["dateObserved"]["value"] == {"@type": "DateTime", "@value": observed}
        assert body["dataProvider"]["value"] == "Gemeente Amsterdam"

        waste_body = (await client.get(f"/ngsi-ld/v1/entities/urn:ngsi-ld:WasteContainer:{waste.sensor_id}")).json()
        assert waste_body["type"] == "WasteContainer" and "dataModel.WasteManagement" in waste_body["@context"][0]
        assert waste_body["fillingLevel"]["value"] == 0.93 and waste_body["fillingLevel"]["unitCode"] == "C62"
        assert "temperature" not in waste_body and "dateObserved" not in waste_body  # not reported; not in the model

        energy_body = (await client.get(f"/ngsi-ld/v1/entities/urn:ngsi-ld:ACMeasurement:{energy.sensor_id}")).json()
        assert energy_body["activePower"]["unitCode"] == "KWT" and energy_body["voltage"]["unitCode"] == "VLT"
        assert "location" not in energy_body  # undisclosed location: no GeoProperty

        silent_body = (await client.get(f"/ngsi-ld/v1/entities/urn:ngsi-ld:TrafficFlowObserved:{silent.sensor_id}"))
        assert "intensity" not in silent_body.json() and silent_body.json()["location"]["type"] == "GeoProperty"

        listed = await client.get("/ngsi-ld/v1/entities", params={"type": "TrafficFlowObserved", "count": "true"})
        assert listed.status_code == 200 and listed.headers["ngsi-ld-results-count"] == "2"
        ids = [item["id"] for item in listed.json()]
        assert ids == sorted([entity_id, f"urn:ngsi-ld:TrafficFlowObserved:{silent.sensor_id}"])
        first_page = (await client.get("/ngsi-ld/v1/entities", params={"type": "TrafficFlowObserved", "limit": 1}))
        assert [item["id"] for item in first_page.json()] == ids[:1]
        assert (await client.get("/ngsi-ld/v1/entities", params={"type": "Streetlight"})).json() == []

        simple = (await client.get(f"/ngsi-ld/v1/entities/{entity_id}", params={"options": "keyValues"})).json()
        assert simple["averageVehicleSpeed"] == 38.5 and simple["dateObserved"] == observed
        assert simple["location"] == {"type": "Point", "coordinates": [4.8952, 52.3702]}
        assert simple["type"] == "TrafficFlowObserved" and "@context" in simple

        plain = await client.get(f"/ngsi-ld/v1/entities/{entity_id}", headers={"accept": "application/json"})
        assert plain.headers["content-type"] == "application/json" and "@context" not in plain.json()
        assert 'rel="http://www.w3.org/ns/json-ld#context"' in plain.headers["link"]

        missing = await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:TrafficFlowObserved:traffic-not-declared")
        assert missing.status_code == 404 and missing.json()["type"].endswith("/ResourceNotFound")
        wrong_type = await client.get(f"/ngsi-ld/v1/entities/urn:ngsi-ld:WasteContainer:{traffic.sensor_id}")
        assert wrong_type.status_code == 404
        bad = await client.get("/ngsi-ld/v1/entities/traffic-ams-0042")
        assert bad.status_code == 400 and bad.json()["type"].endswith("/BadRequestData")
        refused = await client.get(f"/ngsi-ld/v1/entities/{entity_id}", headers={"accept": "text/html"})
        assert refused.status_code == 406
        anonymous = await client.get(f"/ngsi-ld/v1/entities/{entity_id}", headers={"authorization": ""})
        assert anonymous.status_code == 401
