"""Liveness, readiness, Prometheus metrics and the ops-centre page's static files."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from services.api.auth import SECURED, Role, policy
from services.api.errors import ApiError
from services.api.models import Health, example_response
from services.api.readiness import api_readiness
from services.common.metrics import metrics_payload
from services.common.readiness import Readiness

router = APIRouter(tags=["operations"], dependencies=SECURED)
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
ASSETS = {"app.js": "text/javascript", "app.css": "text/css", "index.html": "text/html"}


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
