"""Operator audit (admin only): who acknowledged, assigned, commented on or resolved which alert, and when.

Reads the operator events in `alert_events` (rows with an actor), i.e. commands as the owning service applied
them; a command that was refused or is still in flight is not here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from services.api.auth import SECURED, Role, policy
from services.api.errors import ERROR_RESPONSES, ApiError
from services.api.models import AuditEntry, Page, example_page, example_response
from services.api.params import MAX_PAGE, next_offset

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=ERROR_RESPONSES, dependencies=SECURED)

AUDIT_SQL = """
SELECT occurred_at, alert_id, sensor_id, domain, kind, event_type, status, actor, assignee, comment,
       count(*) OVER () AS total
FROM alert_events
WHERE actor IS NOT NULL AND ($1::text IS NULL OR actor = $1) AND ($2::text IS NULL OR alert_id = $2)
  AND ($3::timestamptz IS NULL OR occurred_at >= $3) AND ($4::timestamptz IS NULL OR occurred_at < $4)
ORDER BY occurred_at DESC, event_id DESC LIMIT $5 OFFSET $6
"""


@router.get("/operator-actions", response_model=Page[AuditEntry], openapi_extra=policy(Role.ADMIN),
            responses=example_response(example_page(AuditEntry.model_config["json_schema_extra"]["examples"][0])))
async def operator_actions(
    request: Request,
    actor: Annotated[str | None, Query(max_length=120, description="Only this operator", examples=["ops-anna"])]
    = None,
    alert_id: Annotated[str | None, Query(max_length=200, description="Only this alert")] = None,
    since: Annotated[datetime | None, Query(description="At or after")] = None,
    until: Annotated[datetime | None, Query(description="Before")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50, offset: Annotated[int, Query(ge=0, le=10**6)] = 0,
) -> Page[AuditEntry]:
    """Operator actions applied to alerts, newest first: the admin's view of who did what."""
    for value, field in ((since, "since"), (until, "until")):
        if value is not None and value.tzinfo is None:
            raise ApiError(422, "INVALID_PARAMETER", "timestamp must carry a timezone", field)
    async with request.app.state.api.pool.acquire() as connection:
        rows = await connection.fetch(AUDIT_SQL, actor, alert_id, since, until, limit, offset)
    total = rows[0]["total"] if rows else 0
    items = [AuditEntry(**{key: value for key, value in dict(row).items() if key != "total"}) for row in rows]
    return Page(items=items, total=total, limit=limit, offset=offset, next_offset=next_offset(offset, limit, total))
