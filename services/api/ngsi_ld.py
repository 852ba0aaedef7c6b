"""A sensor's latest state as an NGSI-LD entity of its Smart Data Models type (pure: no I/O), so FIWARE-based
city systems can read CityStream: traffic → TrafficFlowObserved, energy → ACMeasurement, waste → WasteContainer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.common import METRICS_BY_DOMAIN, Domain
from schemas.register import SensorRegistration

CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
ENTITY_TYPE: dict[Domain, str] = {
    Domain.TRAFFIC: "TrafficFlowObserved",
    Domain.ENERGY: "ACMeasurement",
    Domain.WASTE: "WasteContainer",
}
DOMAIN_OF_TYPE = {entity_type: domain for domain, entity_type in ENTITY_TYPE.items()}
# The Smart Data Models subject whose @context defines each type's attribute names.
CONTEXT: dict[Domain, str] = {
    Domain.TRAFFIC: "https://raw.githubusercontent.com/smart-data-models/dataModel.Transportation/master/context.jsonld",
    Domain.ENERGY: "https://raw.githubusercontent.com/smart-data-models/dataModel.Energy/master/context.jsonld",
    Domain.WASTE: "https://raw.githubusercontent.com/smart-data-models/dataModel.WasteManagement/master/context.jsonld",
}
# Types that carry `dateObserved` in their Smart Data Model (WasteContainer does not).
DATE_OBSERVED_TYPES = {"TrafficFlowObserved", "ACMeasurement"}
# Units as the register declares them → UN/CEFACT common codes (NGSI-LD `unitCode`); others are left out.
UNIT_CODES = {
    "km/h": "KMH", "m/s": "MTS", "kw": "KWT", "w": "WTT", "kwh": "KWH", "wh": "WHR", "v": "VLT", "a": "AMP",
    "°c": "CEL", "kg": "KGM", "t": "TNE", "ppm": "59", "%": "P1", "fraction": "C62", "ratio": "C62", "1": "C62",
}  # vehicles per hour has no common code: `intensity` goes without one
URN_PREFIX = "urn:ngsi-ld:"


def entity_id(record: SensorRegistration) -> str:
    return f"{URN_PREFIX}{ENTITY_TYPE[record.domain]}:{record.sensor_id}"


def sensor_id_of(entity: str) -> str | None:
    """`urn:ngsi-ld:<Type>:<sensor id>` → the sensor id; None when the id is not one CityStream mints."""
    if not entity.startswith(URN_PREFIX):
        return None
    entity_type, _, sensor_id = entity.removeprefix(URN_PREFIX).partition(":")
    return sensor_id if entity_type in DOMAIN_OF_TYPE and sensor_id else None


def context(domain: Domain) -> list[str]:
    return [CONTEXT[domain], CORE_CONTEXT]


def unit_code(unit: str) -> str | None:
    return UNIT_CODES.get(unit.strip().lower())


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def entity(record: SensorRegistration, latest: dict[str, Any] | None, *, with_context: bool) -> dict[str, Any]:
    """Normalized NGSI-LD entity. `latest`: the newest reading (`observed_at`, `metrics`), or None when the sensor
    has not reported; each metric becomes a Property with `observedAt` and, where known, `unitCode`."""
    body: dict[str, Any] = {"id": entity_id(record), "type": ENTITY_TYPE[record.domain]}
    if record.location is not None:
        body["location"] = {"type": "GeoProperty",
                            "value": {"type": "Point", "coordinates": list(record.location)}}
    body["dataProvider"] = {"type": "Property", "value": record.owner_organisation}
    if latest is not None:
        observed_at = _iso(latest["observed_at"])
        units = {declared.name: declared.unit for declared in record.metrics}
        for name in METRICS_BY_DOMAIN[record.domain]:  # only Smart Data Models attribute names, in model order
            value = latest["metrics"].get(name)
            if value is None:
                continue
            attribute = {"type": "Property", "value": value, "observedAt": observed_at}
            code = unit_code(units.get(name, ""))
            if code:
                attribute["unitCode"] = code
            body[name] = attribute
        if body["type"] in DATE_OBSERVED_TYPES:
            body["dateObserved"] = {"type": "Property", "value": {"@type": "DateTime", "@value": observed_at}}
    if with_context:
        body["@context"] = context(record.domain)
    return body


def key_values(normalized: dict[str, Any]) -> dict[str, Any]:
    """The simplified representation (`options=keyValues`): each attribute by its value alone."""
    simple: dict[str, Any] = {}
    for name, attribute in normalized.items():
        if isinstance(attribute, dict) and attribute.get("type") in ("Property", "GeoProperty"):
            value = attribute["value"]
            simple[name] = value["@value"] if isinstance(value, dict) and "@value" in value else value
        else:
            simple[name] = attribute  # id, type, @context
    return simple


def problem(status: int, kind: str, title: str, detail: str) -> dict[str, Any]:
    """NGSI-LD ProblemDetails (ETSI GS CIM 009 §5.5.2)."""
    return {"type": f"https://uri.etsi.org/ngsi-ld/errors/{kind}", "title": title, "status": status,
            "detail": detail}
