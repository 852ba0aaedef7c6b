"""Public transparency: GeoJSON of non-draft sensors, the map page, removal requests (and their handling).

Removal requests are anonymous and each one is written to the append-only audit log, so a client address may send
only a few (CITYSTREAM_REGISTER_REMOVALS_BURST, then _PER_MINUTE); more get 429 before any database work.
"""

from __future__ import annotations

import math
import time
from importlib import resources
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse

from services.common.source_limit import SourceLimiter
from services.register import queries, removals
from services.register.deps import Caller, Connection, Context
from services.register.domain import RegisterError
from services.register.models import RemovalClose, RemovalRequestCreate
from services.register.policy import SECURED, Access, access

router = APIRouter(tags=["public"], dependencies=SECURED)
MAP_HTML = resources.files("services.register").joinpath("static/map.html").read_text()


@router.get("/public/sensors.geojson", openapi_extra=access(Access.PUBLIC))
async def public_sensors(context: Context, conn: Connection) -> JSONResponse:
    """Every non-draft sensor with public fields only: never credentials or contact details."""
    collection = await queries.public_geojson(conn, context.clock())
    return JSONResponse(collection, media_type="application/geo+json")


@router.get("/map", response_class=HTMLResponse, openapi_extra=access(Access.PUBLIC))
async def public_map() -> HTMLResponse:
    """The public register map (self-contained: no external tiles, scripts or fonts)."""
    return HTMLResponse(MAP_HTML)


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
