"""Alert queries on `alert_events`: the current state of an alert is its latest row; history is all its rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from schemas.alerts import AlertEvent

_COLUMNS = ("event_id, alert_id, event_type, sensor_id, domain, kind, severity, status, opened_at, occurred_at, "
            "explanation, actor, assignee, comment, resolved_at")


@dataclass
class AlertFilter:
    domains: list[str] = field(default_factory=list)
    severities: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    sensor_ids: list[str] | None = None  # None = any sensor; [] = none (an area holding no sensor)
    opened_since: datetime | None = None
    opened_until: datetime | None = None

    def matches(self, event: AlertEvent) -> bool:
        """The same filter in memory, for events the hub saw before the database did."""
        return (self.matches_alert(event)
                and (not self.severities or event.severity.value in self.severities)
                and (not self.statuses or event.status.value in self.statuses))

    def matches_alert(self, event: AlertEvent) -> bool:
        """Only the columns constant over an alert's life (the inner filter of `list_sql`)."""
        return ((not self.domains or event.domain.value in self.domains)
                and (not self.kinds or event.kind.value in self.kinds)
                and (self.sensor_ids is None or event.sensor_id in self.sensor_ids)
                and (self.opened_since is None or event.opened_at >= self.opened_since)
                and (self.opened_until is None or event.opened_at < self.opened_until))


_OVERLAY_TYPES = ("event_id text, alert_id text, event_type text, sensor_id text, domain text, kind text, "
                  "severity text, status text, opened_at timestamptz, occurred_at timestamptz, explanation jsonb, "
                  "actor text, assignee text, comment text, resolved_at timestamptz")


def list_sql(flt: AlertFilter, overlay: list[dict] | None = None) -> tuple[str, list]:
    """Latest row per alert, filtered; alert-constant columns narrow the scan before DISTINCT ON.

    `overlay`: events (JSON-ready dicts) the live hub holds; they join the stored rows before "latest per alert"
    is taken, so status and severity filters, totals and pages judge the freshest state (the sink may lag the
    stream) instead of being patched after the filter ran."""
    args: list = []

    def arg(value) -> str:
        args.append(value)
        return f"${len(args)}"

    inner = ["TRUE"]
    if flt.domains:
        inner.append(f"domain = ANY({arg(flt.domains)}::text[])")
    if flt.kinds:
        inner.append(f"kind = ANY({arg(flt.kinds)}::text[])")
    if flt.sensor_ids is not None:
        inner.append(f"sensor_id = ANY({arg(flt.sensor_ids)}::text[])")
    if flt.opened_since:
        inner.append(f"opened_at >= {arg(flt.opened_since)}")
    if flt.opened_until:
        inner.append(f"opened_at < {arg(flt.opened_until)}")
    where = " AND ".join(inner)
    source = f"SELECT {_COLUMNS} FROM alert_events WHERE {where}"
    if overlay is not None:
        source += (f" UNION ALL SELECT {_COLUMNS} FROM jsonb_to_recordset({arg(overlay)}::jsonb)"
                   f" AS live({_OVERLAY_TYPES}) WHERE {where}")
    outer = ["TRUE"]
    if flt.statuses:
        outer.append(f"status = ANY({arg(flt.statuses)}::text[])")
    if flt.severities:
        outer.append(f"severity = ANY({arg(flt.severities)}::text[])")
    sql = (f"SELECT {_COLUMNS}, count(*) OVER () AS total FROM ("
           f" SELECT DISTINCT ON (alert_id) {_COLUMNS} FROM ({source}) AS events"
           f" ORDER BY alert_id, occurred_at DESC, event_id DESC) AS latest"
           f" WHERE {' AND '.join(outer)}"
           f" ORDER BY occurred_at DESC, alert_id LIMIT {arg(0)} OFFSET {arg(0)}")
    return sql, args


async def list_alerts(connection, flt: AlertFilter, limit: int, offset: int,
                      live: list[AlertEvent] | None = None) -> tuple[list[AlertEvent], int]:
    """`live`: events the hub consumed (possibly not stored yet); the freshest state of each alert wins."""
    overlay = [event.model_dump(mode="json") for event in live or () if flt.matches_alert(event)]
    sql, args = list_sql(flt, overlay or None)
    args[-2:] = [limit, offset]
    rows = await connection.fetch(sql, *args)
    total = rows[0]["total"] if rows else 0
    return [row_to_event(row) for row in rows], total


async def history(connection, alert_id: str) -> list[AlertEvent]:
    rows = await connection.fetch(
        f"SELECT {_COLUMNS} FROM alert_events WHERE alert_id = $1 ORDER BY occurred_at, event_id", alert_id)
    return [row_to_event(row) for row in rows]


async def open_alerts_by_sensor(connection, sensor_ids: list[str]) -> dict[str, list[AlertEvent]]:
    events, _ = await list_alerts(connection, AlertFilter(statuses=["open", "acknowledged"], sensor_ids=sensor_ids),
                                  limit=10_000, offset=0)
    found: dict[str, list[AlertEvent]] = {}
    for event in events:
        found.setdefault(event.sensor_id, []).append(event)
    return found


def row_to_event(row) -> AlertEvent:
    data = {key: row[key] for key in _COLUMNS.split(", ") if row[key] is not None}
    return AlertEvent.model_validate(data)


CONTRIBUTING_SQL = """
SELECT seq, observed_at, received_at, metrics FROM readings
WHERE sensor_id = $1 AND seq = ANY($2::bigint[]) AND observed_at >= $3 AND observed_at <= $4 ORDER BY observed_at
"""
