"""Liveness, readiness, Prometheus metrics, the ops-centre page's static files and the data only that page needs:
its settings (`/v1/ops/config`), every sensor's map status in one call (`/v1/ops/map`, from the register topic,
`readings`, `rejections` and `alert_events`) and a sensor's public register record (`/v1/ops/sensors/{id}`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from schemas.common import SENSOR_ID_PATTERN
from services.api import alert_store
from services.api.auth import SECURED, Role, policy
from services.api.errors import ERROR_RESPONSES, ApiError
from services.api.models import (
    EXAMPLE_MAP,
    EXAMPLE_RECORD,
    Health,
    OpsConfig,
    OpsMap,
    RegisterRecord,
    example_response,
)
from services.api.readiness import api_readiness
from services.api.status import sensor_status
from services.common.metrics import metrics_payload
from services.common.readiness import Readiness

router = APIRouter(tags=["operations"], dependencies=SECURED)
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
ASSETS = {"app.js": "text/javascript", "app.css": "text/css", "index.html": "text/html",
          "favicon.svg": "image/svg+xml"}
# Built by web/build.mjs (`make assets`): the page's libraries, served from this origin (no CDN).
VENDOR = {"map.js": "text/javascript", "map.css": "text/css", "chart.js": "text/javascript", "chart.css": "text/css"}
VIEWER = policy(Role.VIEWER)
# One index lookup per sensor (readings_pkey: sensor_id, observed_at, seq), newest row only: cheap for 10,000 sensors.
LAST_SEEN_SQL = """
SELECT ids.sensor_id, (SELECT observed_at FROM readings r WHERE r.sensor_id = ids.sensor_id AND r.observed_at >= $2
                       ORDER BY observed_at DESC LIMIT 1) AS last_observed_at
FROM unnest($1::text[]) AS ids(sensor_id)
"""
RECENT_REJECTED_SQL = """
SELECT DISTINCT sensor_id FROM rejections WHERE received_at >= $1 AND sensor_id IS NOT NULL
"""
LAST_SEEN_HORIZON = timedelta(days=7)
REJECTION_WINDOW = timedelta(minutes=15)


@router.get("/healthz", response_model=Health, openapi_extra=policy(Role.PUBLIC))
async def healthz() -> Health:
    """Alive: the process answers."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, openapi_extra=policy(Role.PUBLIC),
            responses={503: {"model": Readiness, "description": "A dependency is not ready"}})
async def readyz(request: Request):
    """Ready: the database answers, Kafka answers a metadata request (asked at most once a second), the alert
    stream has caught up with the topic and the sensor register is caught up."""
    answer = await api_readiness(request.app.state.api)
    return JSONResponse(answer.model_dump(), status_code=answer.http_status)


@router.get("/metrics", openapi_extra=policy(Role.PUBLIC), response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus exposition"}})
async def metrics(request: Request) -> Response:
    payload, content_type = metrics_payload(request.app.state.api.metrics.registry)
    return Response(payload, media_type=content_type)


@router.get("/", include_in_schema=False, openapi_extra=policy(Role.PUBLIC))
async def root() -> RedirectResponse:
    return RedirectResponse("/ops/")


@router.get("/ops/", include_in_schema=False, openapi_extra=policy(Role.PUBLIC))
async def ops_page() -> FileResponse:
    """The page itself is public; its data calls need a token, entered in the page or passed in the URL fragment."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


@router.get("/ops/{asset}", include_in_schema=False, openapi_extra=policy(Role.PUBLIC))
async def ops_asset(asset: str) -> FileResponse:
    if asset not in ASSETS:
        raise ApiError(404, "NOT_FOUND", f"no asset {asset!r}", "asset")
    return FileResponse(STATIC_DIR / asset, media_type=ASSETS[asset])


@router.get("/ops/vendor/{asset}", include_in_schema=False, openapi_extra=policy(Role.PUBLIC))
async def ops_vendor_asset(asset: str) -> FileResponse:
    if asset not in VENDOR:
        raise ApiError(404, "NOT_FOUND", f"no asset {asset!r}", "asset")
    return FileResponse(STATIC_DIR / "vendor" / asset, media_type=VENDOR[asset],
                        headers={"Cache-Control": "public, max-age=3600"})


@router.get("/favicon.ico", include_in_schema=False, openapi_extra=policy(Role.PUBLIC))
async def favicon() -> FileResponse:
    """Browsers ask for it on every page load; answered rather than left a 404."""
    return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")


@router.get("/v1/ops/config", response_model=OpsConfig, openapi_extra=VIEWER, tags=["operations"])
async def ops_config(request: Request) -> OpsConfig:
    """What the ops page needs from the deployment's settings: the basemap and where the public register is."""
    settings = request.app.state.api.settings
    return OpsConfig(tile_url=settings.api_map_tile_url or None,
                     tile_attribution=settings.api_map_tile_attribution or None,
                     register_url=settings.api_register_url or None)


@router.get("/v1/ops/map", response_model=OpsMap, openapi_extra=VIEWER, tags=["operations"],
            responses=example_response(EXAMPLE_MAP))
async def ops_map(request: Request) -> OpsMap:
    """Every registered sensor with a location, in one compact answer for the map: `[sensor_id, longitude,
    latitude, domain, status]`. Status as in `/v1/sensors` (alerting, rejected, silent, ok)."""
    state = request.app.state.api
    now = datetime.now(UTC)
    located = {sensor_id: record for sensor_id, record in state.directory.sensors.items() if record.location}
    ids = sorted(located)
    async with state.pool.acquire() as connection:
        last_seen = {row["sensor_id"]: row["last_observed_at"]
                     for row in await connection.fetch(LAST_SEEN_SQL, ids, now - LAST_SEEN_HORIZON)}
        rejected = {row["sensor_id"] for row in await connection.fetch(RECENT_REJECTED_SQL, now - REJECTION_WINDOW)}
        events, _ = await alert_store.list_alerts(
            connection, alert_store.AlertFilter(statuses=["open", "acknowledged"]), limit=100_000, offset=0,
            live=list(state.hub.latest_by_alert.values()) if state.hub else None)
    alerting: dict[str, int] = {}
    for event in events:
        alerting[event.sensor_id] = alerting.get(event.sensor_id, 0) + 1
    rows = []
    for sensor_id in ids:
        record = located[sensor_id]
        status = sensor_status(now=now, last_observed_at=last_seen.get(sensor_id),
                               open_alerts=alerting.get(sensor_id, 0), recent_rejections=int(sensor_id in rejected),
                               reporting_interval_s=record.reporting_interval_s,
                               silence_factor=state.settings.api_silence_factor)
        rows.append((sensor_id, record.location[0], record.location[1], record.domain.value, status.value))
    return OpsMap(generated_at=now, sensors=rows, unlocated=len(state.directory.sensors) - len(ids))


@router.get("/v1/ops/sensors/{sensor_id}", response_model=RegisterRecord, openapi_extra=VIEWER, tags=["operations"],
            responses={**ERROR_RESPONSES, **example_response(EXAMPLE_RECORD)})
async def register_record(
    request: Request, sensor_id: Annotated[str, PathParam(pattern=SENSOR_ID_PATTERN, examples=["waste-ams-0007"])],
) -> RegisterRecord:
    """A sensor's public register record as the register topic carries it (owner, purpose, metrics with units,
    reporting interval); never its contact details or credentials."""
    state = request.app.state.api
    record = state.directory.sensors.get(sensor_id)
    if record is None:
        raise ApiError(404, "SENSOR_NOT_FOUND", f"no registered sensor {sensor_id!r}", "sensor_id")
    details = record.details
    settings = state.settings
    return RegisterRecord(
        sensor_id=record.sensor_id, version=record.version, status=record.status.value, domain=record.domain.value,
        owner_organisation=record.owner_organisation, location=record.location,
        metrics=[{"name": m.name, "unit": m.unit, "min": m.min, "max": m.max} for m in record.metrics],
        reporting_interval_s=record.reporting_interval_s, active_until=record.active_until,
        purpose=details.purpose if details else None, legal_ground=details.legal_ground if details else None,
        personal_data=details.personal_data if details else None,
        location_description=details.location_description if details else None,
        description=details.description if details else None,
        register_url=f"{settings.api_register_url.rstrip('/')}/map#sensor={sensor_id}"
        if settings.api_register_url else None)


@router.get("/openapi.json", include_in_schema=False, openapi_extra=policy(Role.PUBLIC))
async def openapi_document(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs", include_in_schema=False, openapi_extra=policy(Role.PUBLIC))
async def docs() -> Response:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="CityStream operations API")


@router.get("/v1/me", tags=["operations"], openapi_extra=policy(Role.VIEWER),
            responses=example_response({"name": "ops-anna", "role": "operator"}))
async def me(request: Request) -> dict[str, str]:
    """Who the token belongs to: the page shows operator buttons only to operators."""
    principal = request.state.principal
    return {"name": principal.name, "role": principal.role.name.lower()}
