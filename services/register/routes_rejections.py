"""`GET /v1/rejections` (owners: their own sensors; admins: all) and the owner view page that shows them."""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from schemas.rejections import RejectionReason
from services.register import rejections
from services.register.deps import Caller, Connection, Context
from services.register.domain import RegisterError
from services.register.policy import SECURED, Access, access

router = APIRouter(tags=["rejections"], dependencies=SECURED)
OWNER_HTML = resources.files("services.register").joinpath("static/owner.html").read_text()


@router.get("/v1/rejections", response_model=rejections.RejectionPage, openapi_extra=access(Access.OWNER))
async def list_rejections(
    context: Context, caller: Caller, conn: Connection,
    sensor_id: Annotated[list[str] | None, Query(max_length=100, description="Repeatable; default: every sensor "
                                                 "the token may see.")] = None,
    reason: Annotated[list[RejectionReason] | None, Query(description="Repeatable reason code.")] = None,
    since: Annotated[datetime | None, Query(description="From (inclusive, `received_at`); default: 7 days "
                                            "before `until`.")] = None,
    until: Annotated[datetime | None, Query(description="To (exclusive); default: now.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")] = None,
) -> dict:
    """Why readings were refused: the rejections of the caller's sensors (an owner token: its organisation's
    sensors only; the admin: every rejection, unknown sensors included), newest first, with counts by reason."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.utcoffset() is None:
            raise RegisterError(422, "MALFORMED", name, "timestamp must carry a timezone offset, e.g. Z")
    start = rejections.default_since(since, until, context.clock())
    if until is not None and until <= start:
        raise RegisterError(422, "MALFORMED", "until", "until must be after since")
    sensor_ids = await rejections.visible_sensor_ids(conn, caller, sensor_id)
    where = rejections.RejectionFilter(sensor_ids, [r.value for r in reason] if reason else None, start, until)
    return await rejections.rejection_page(conn, where, limit, cursor)


@router.get("/owner", response_class=HTMLResponse, openapi_extra=access(Access.PUBLIC))
async def owner_page() -> HTMLResponse:
    """The owner view: the page is public, the data needs the owner's token (entered on the page)."""
    return HTMLResponse(OWNER_HTML)
