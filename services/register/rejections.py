"""Rejections for owners: reads the sink's `rejections` hypertable (shared database), filtered to the sensors the
caller may see, by sensor, reason and time range; keyset-paginated, with counts by reason over the whole filter."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from pydantic import BaseModel, Field

from schemas.rejections import RejectedReading, RejectionReason
from services.register import repository as repo
from services.register.auth import Principal
from services.register.changes import not_found
from services.register.domain import RegisterError

DEFAULT_WINDOW = timedelta(days=7)  # without `since`: the last week (the table can hold years)


class RejectionPage(BaseModel):
    """One page of rejections, newest first, and the counts of the whole filtered range."""

    items: list[RejectedReading] = Field(description="Rejections, newest first (`received_at`, then `event_id`).")
    total: int = Field(description="Rejections matching the filter, all pages together.")
    counts_by_reason: dict[RejectionReason, int] = Field(description="`total` split by reason code.")
    since: datetime = Field(description="Start of the range (inclusive).")
    until: datetime | None = Field(description="End of the range (exclusive); null = now.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page; null on the last page.")


@dataclass(frozen=True)
class RejectionFilter:
    sensor_ids: list[str] | None  # None = every sensor the caller may see
    reasons: list[str] | None
    since: datetime
    until: datetime | None


def encode_cursor(received_at: datetime, event_id: UUID) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([received_at.isoformat(), str(event_id)])).decode()


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        received_at, event_id = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(received_at), UUID(event_id)
    except (ValueError, TypeError) as problem:
        raise RegisterError(422, "BAD_CURSOR", "cursor", f"not a cursor from a previous page: {problem}") from None


async def visible_sensor_ids(conn: asyncpg.Connection, principal: Principal,
                             requested: list[str] | None) -> list[str] | None:
    """The sensor ids to filter on. Owners: only their organisation's (asking for another's is 403, for a sensor
    the register does not know 404). Admins: what they asked for, or None (every row, unknown sensors included)."""
    if requested:
        for sensor_id in requested:
            row = await repo.fetch_sensor(conn, sensor_id)
            if row is None and principal.organisation is not None:
                raise not_found(sensor_id)
            if row is not None:
                principal.require_organisation(row["owner_organisation"], "sensor_id")
        return sorted(set(requested))
    if principal.organisation is None:
        return None
    rows = await conn.fetch("SELECT sensor_id FROM register_sensors WHERE owner_organisation = $1",
                            principal.organisation)
    return [row["sensor_id"] for row in rows]


_WHERE = ("($1::text[] IS NULL OR sensor_id = ANY($1)) AND ($2::text[] IS NULL OR reason = ANY($2))"
          " AND received_at >= $3 AND ($4::timestamptz IS NULL OR received_at < $4)")


async def rejection_page(conn: asyncpg.Connection, where: RejectionFilter, limit: int,
                         cursor: str | None) -> dict[str, Any]:
    args = (where.sensor_ids, where.reasons, where.since, where.until)
    counts = await conn.fetch(f"SELECT reason, count(*) AS n FROM rejections WHERE {_WHERE} GROUP BY reason", *args)
    after = decode_cursor(cursor) if cursor else (None, None)
    rows = await conn.fetch(
        f"SELECT received_at, event_id, sensor_id, seq, reason, detail, field, source, payload FROM rejections"
        f" WHERE {_WHERE} AND ($5::timestamptz IS NULL OR (received_at, event_id) < ($5, $6::uuid))"
        f" ORDER BY received_at DESC, event_id DESC LIMIT $7", *args, *after, limit + 1)
    page = rows[:limit]
    by_reason = {row["reason"]: row["n"] for row in counts}
    return {
        "items": [dict(row) | {"event_id": str(row["event_id"])} for row in page],
        "total": sum(by_reason.values()),
        "counts_by_reason": by_reason,
        "since": where.since,
        "until": where.until,
        "next_cursor": encode_cursor(page[-1]["received_at"], page[-1]["event_id"]) if len(rows) > limit else None,
    }


def default_since(since: datetime | None, until: datetime | None, now: datetime) -> datetime:
    return since if since is not None else (until or now) - DEFAULT_WINDOW
