"""NGSI-LD (ETSI GS CIM 009) read view: `GET /ngsi-ld/v1/entities/{id}` and `GET /ngsi-ld/v1/entities?type=`,
each sensor's latest state as a Smart Data Models entity. Reads `readings` (latest row per sensor); types,
locations and units come from the register topic (the API's sensor directory)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from schemas.register import SensorRegistration
from services.api import ngsi_ld
from services.api.auth import SECURED, Role, policy
from services.api.errors import ErrorBody

JSON_LD = "application/ld+json"
LATEST_SQL = """
SELECT s.sensor_id, r.observed_at, r.metrics FROM unnest($1::text[]) AS s(sensor_id)
CROSS JOIN LATERAL (SELECT observed_at, metrics FROM readings WHERE readings.sensor_id = s.sensor_id
                    ORDER BY observed_at DESC LIMIT 1) AS r
"""


EXAMPLE = {
    "id": "urn:ngsi-ld:TrafficFlowObserved:traffic-ams-0042", "type": "TrafficFlowObserved",
    "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [4.8952, 52.3702]}},
    "dataProvider": {"type": "Property", "value": "Gemeente Amsterdam"},
    "intensity": {"type": "Property", "value": 420.0, "observedAt": "2026-12-04T08:00:00Z"},
    "averageVehicleSpeed": {"type": "Property", "value": 38.5, "observedAt": "2026-12-04T08:00:00Z", "unitCode": "KMH"},
    "dateObserved": {"type": "Property", "value": {"@type": "DateTime", "@value": "2026-12-04T08:00:00Z"}},
    "@context": ngsi_ld.context(ngsi_ld.Domain.TRAFFIC),
}


class NgsiLdEntity(BaseModel):
    """A normalized NGSI-LD entity: `id`, `type`, then one Property / GeoProperty per attribute."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, json_schema_extra={"examples": [EXAMPLE]})

    id: str = Field(description="`urn:ngsi-ld:<type>:<sensor id>`")
    type: str = Field(description="TrafficFlowObserved, ACMeasurement or WasteContainer")
    context: list[str] | None = Field(default=None, alias="@context",
                                      description="Present with `application/ld+json`; else sent as a Link header.")


class ProblemDetails(BaseModel):
    type: str
    title: str
    status: int
    detail: str


def _without_context(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if key != "@context"}


def _json_ld(schema: dict[str, Any], example: Any) -> dict[str, Any]:
    """The 200 answer is JSON-LD by default; FastAPI documents `response_model` under application/json."""
    plain = [_without_context(item) for item in example] if isinstance(example, list) else _without_context(example)
    return {200: {"description": "The entity (entities): `application/ld+json` with `@context`, or with "
                                 "`Accept: application/json` plain JSON and the context in a `Link` header.",
                  "content": {JSON_LD: {"schema": schema, "example": example},
                              "application/json": {"example": plain}}}}


RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ProblemDetails, "description": "BadRequestData (e.g. an id CityStream does not mint)"},
    401: {"model": ErrorBody, "description": "No or unknown token"},
    403: {"model": ErrorBody, "description": "Role too low"},
    404: {"model": ProblemDetails, "description": "ResourceNotFound"},
    406: {"model": ProblemDetails, "description": "NotAcceptable: ask for application/ld+json or application/json"},
    422: {"model": ErrorBody, "description": "Invalid parameter"},
}
Options = Annotated[str | None, Query(max_length=100, description="`keyValues`: each attribute by its value alone "
                                      "(the simplified representation)")]
router = APIRouter(prefix="/ngsi-ld/v1", tags=["ngsi-ld"], responses=RESPONSES, dependencies=SECURED)
VIEWER = policy(Role.VIEWER)


def _negotiated(request: Request) -> str | None:
    """JSON-LD unless the client asks for plain JSON only; None when it accepts neither (406)."""
    accept = request.headers.get("accept", "*/*").lower()
    if JSON_LD in accept or "*/*" in accept or "application/*" in accept:
        return JSON_LD
    return "application/json" if "application/json" in accept else None


def _answer(request: Request, records: list[SensorRegistration], latest: dict[str, dict], *, single: bool,
            options: str | None, headers: dict[str, str] | None = None) -> JSONResponse:
    media_type = _negotiated(request)
    if media_type is None:
        return _problem(406, "NotAcceptable", "Not acceptable", "answers are application/ld+json or application/json")
    with_context = media_type == JSON_LD
    entities = [ngsi_ld.entity(record, latest.get(record.sensor_id), with_context=with_context) for record in records]
    if "keyValues" in (options or "").split(","):
        entities = [ngsi_ld.key_values(item) for item in entities]
    headers = dict(headers or {})
    if not with_context and records:  # plain JSON: the @context travels as a Link header (CIM 009 §6.3.5)
        headers["Link"] = (f'<{ngsi_ld.CONTEXT[records[0].domain]}>; rel="http://www.w3.org/ns/json-ld#context";'
                           f' type="{JSON_LD}"')
    return JSONResponse(entities[0] if single else entities, media_type=media_type, headers=headers)


def _problem(status: int, kind: str, title: str, detail: str) -> JSONResponse:
    return JSONResponse(ngsi_ld.problem(status, kind, title, detail), status_code=status,
                        media_type="application/json")


async def _latest(request: Request, sensor_ids: list[str]) -> dict[str, dict]:
    async with request.app.state.api.pool.acquire() as connection:
        rows = await connection.fetch(LATEST_SQL, sensor_ids)
    return {row["sensor_id"]: dict(row) for row in rows}


@router.get("/entities/{entity_id}", response_model=NgsiLdEntity, openapi_extra=VIEWER,
            responses=_json_ld({"$ref": "#/components/schemas/NgsiLdEntity"}, EXAMPLE))
async def retrieve_entity(
    request: Request,
    entity_id: Annotated[str, Path(max_length=200, examples=["urn:ngsi-ld:TrafficFlowObserved:traffic-ams-0042"])],
    options: Options = None,
) -> JSONResponse:
    """One sensor's latest state in its Smart Data Models type (the register says which)."""
    sensor_id = ngsi_ld.sensor_id_of(entity_id)
    if sensor_id is None:
        return _problem(400, "BadRequestData", "Invalid entity id",
                        "CityStream entity ids are urn:ngsi-ld:<TrafficFlowObserved|ACMeasurement|WasteContainer>:"
                        "<sensor id>")
    record = request.app.state.api.directory.sensors.get(sensor_id)
    if record is None or ngsi_ld.entity_id(record) != entity_id:
        return _problem(404, "ResourceNotFound", "Entity not found", f"no entity {entity_id}")
    return _answer(request, [record], await _latest(request, [sensor_id]), single=True, options=options)


@router.get("/entities", response_model=list[NgsiLdEntity], openapi_extra=VIEWER,
            responses=_json_ld({"type": "array", "items": {"$ref": "#/components/schemas/NgsiLdEntity"}}, [EXAMPLE]))
async def query_entities(
    request: Request,
    entity_type: Annotated[str, Query(alias="type", max_length=200, description="TrafficFlowObserved, "
                                      "ACMeasurement or WasteContainer", examples=["TrafficFlowObserved"])],
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    offset: Annotated[int, Query(ge=0, le=10**6)] = 0,
    count: Annotated[bool, Query(description="Also send the total in the `NGSI-LD-Results-Count` header")] = False,
    options: Options = None,
) -> JSONResponse:
    """Entities of one type, ordered by id, each with its latest state. An unknown type matches nothing."""
    domain = ngsi_ld.DOMAIN_OF_TYPE.get(entity_type)
    sensors = request.app.state.api.directory.sensors
    matching = sorted((record for record in sensors.values() if record.domain == domain),
                      key=lambda record: record.sensor_id) if domain else []
    page = matching[offset:offset + limit]
    latest = await _latest(request, [record.sensor_id for record in page]) if page else {}
    headers = {"NGSI-LD-Results-Count": str(len(matching))} if count else None
    return _answer(request, page, latest, single=False, options=options, headers=headers)
