"""Public transparency: GeoJSON of non-draft sensors with their live status, the map page and its vendored
libraries, removal requests (and their handling).

Removal requests are anonymous and each one is written to the append-only audit log, so a client address may send
only a few (CITYSTREAM_REGISTER_REMOVALS_BURST, then _PER_MINUTE); more get 429 before any database work.
"""

from __future__ import annotations

import html
import math
import time
from importlib import resources
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response

from services.common.source_limit import SourceLimiter
from services.register import queries, removals
from services.register.deps import Caller, Connection, Context
from services.register.domain import RegisterError
from services.register.live_status import LiveStatusCache
from services.register.models import RemovalClose, RemovalRequestCreate
from services.register.policy import SECURED, Access, access

router = APIRouter(tags=["public"], dependencies=SECURED)
STATIC = resources.files("services.register").joinpath("static")
MAP_HTML = STATIC.joinpath("map.html").read_text()
# Built by web/build.mjs (`make assets`): Leaflet + leaflet.markercluster, served from this origin (no CDN).
VENDOR = {"map.js": "text/javascript", "map.css": "text/css"}


def _live_cache(request: Request) -> LiveStatusCache:
    cache = getattr(request.app.state, "live_status", None)
    if cache is None:
        cache = request.app.state.live_status = LiveStatusCache()
    return cache


@router.get("/public/sensors.geojson", openapi_extra=access(Access.PUBLIC))
async def public_sensors(request: Request, context: Context, conn: Connection) -> JSONResponse:
    """Every non-draft sensor with public fields only: never credentials or contact details. `live_status` is
    reporting, silent, suspended or retired, from the age of the last reading (`last_seen_age_s`, in whole minutes;
    refreshed every 30 s); reading values are never published here."""
    now = context.clock()
    collection = await queries.public_geojson(conn, now)
    statuses = await _live_cache(request).get(conn, now)
    for feature in collection["features"]:
        properties = feature["properties"]
        live, age_s = statuses.get(properties["sensor_id"], (None, None))
        properties["live_status"] = live.value if live else ("suspended" if properties["status"] == "suspended"
                                                              else "silent")
        properties["last_seen_age_s"] = age_s
    return JSONResponse(collection, media_type="application/geo+json")


@router.get("/map", response_class=HTMLResponse, openapi_extra=access(Access.PUBLIC))
async def public_map(context: Context) -> HTMLResponse:
    """The public register map: its scripts and styles come from this service (no CDN); map tiles only from the
    URL a deployment sets in CITYSTREAM_REGISTER_MAP_TILE_URL (none by default)."""
    settings = context.settings
    page = MAP_HTML.replace('data-tile-url="" data-tile-attribution=""',
                            f'data-tile-url="{html.escape(settings.register_map_tile_url)}" '
                            f'data-tile-attribution="{html.escape(settings.register_map_tile_attribution)}"', 1)
    return HTMLResponse(page)


@router.get("/map/vendor/{asset}", openapi_extra=access(Access.PUBLIC), include_in_schema=False)
async def public_map_asset(asset: str) -> Response:
    if asset not in VENDOR:
        return Response(f"no asset {asset!r}", status_code=404, media_type="text/plain")
    return Response(STATIC.joinpath("vendor", asset).read_bytes(), media_type=VENDOR[asset],
                    headers={"Cache-Control": "public, max-age=3600"})


def removal_quota(request: Request) -> None:
    """Per client address, before the body is validated or a database connection is taken."""
    limiter: SourceLimiter = request.app.state.removal_limiter
    wait_s = limiter.try_acquire(request.client.host if request.client else "unknown", time.monotonic())
    if wait_s > 0:
        raise RegisterError(429, "RATE_LIMITED", None, "too many removal requests from this address; "
                            "try again later", retry_after_s=max(1, math.ceil(wait_s)))


@router.post("/public/removal-requests", status_code=status.HTTP_201_CREATED, openapi_extra=access(Access.PUBLIC),
             dependencies=[Depends(removal_quota)])
async def request_removal(body: RemovalRequestCreate, context: Context, conn: Connection) -> dict:
    """Anyone may ask for a sensor to be removed; its owner and the admins see the request."""
    request_id = await removals.submit(conn, body, context.clock())
    return {"request_id": request_id, "status": "open"}


@router.get("/v1/removal-requests", openapi_extra=access(Access.OWNER))
async def list_removal_requests(caller: Caller, conn: Connection,
                                state: Annotated[Literal["open", "closed"] | None, Query(alias="status")] = None
                                ) -> list[dict]:
    return await removals.list_requests(conn, caller, state)


@router.post("/v1/removal-requests/{request_id}/close", openapi_extra=access(Access.OWNER))
async def close_removal_request(request_id: int, body: RemovalClose, context: Context, caller: Caller,
                                conn: Connection) -> dict:
    return await removals.close(conn, caller, request_id, body.resolution, context.clock())
