"""Alert routes: list/filter, one alert with explanation, contributing readings and history, operator commands.

Reads `alert_events` and `readings`, overlaid with fresher events the live hub has already consumed from
`citystream.alerts.v1`; commands go to `citystream.alerts.actions.v1` (the anomaly service applies them).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from schemas.alerts import AlertAction, AlertEvent, AlertKind, AlertStatus
from schemas.common import Domain, Severity
from schemas.headers import make_headers
from schemas.topics import ALERT_ACTIONS
from services.api import alert_store
from services.api.alert_store import AlertFilter
from services.api.auth import SECURED, Role, policy
from services.api.errors import ERROR_RESPONSES, ApiError, ErrorBody
from services.api.models import (
    EXAMPLE_ALERT,
    AlertActionAccepted,
    AlertActionRequest,
    AlertDetail,
    Page,
    ReadingPublic,
    example_page,
    example_response,
)
from services.api.params import MAX_PAGE, next_offset, parse_bbox, parse_list
from services.common import jsonwire

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/alerts", tags=["alerts"], responses=ERROR_RESPONSES, dependencies=SECURED)
AlertIdPath = Annotated[str, Path(min_length=1, max_length=200, examples=["a-traffic-ams-0042-congestion-1201"])]


def build_filter(request: Request, domain, severity, status, kind, sensor_id, area, since, until) -> AlertFilter:
    directory = request.app.state.api.directory
    sensor_ids = [sensor_id] if sensor_id else None
    bbox = parse_bbox(area, "area")
    if bbox is not None:
        inside = directory.in_bbox(bbox)
        sensor_ids = [s for s in inside if s in sensor_ids] if sensor_ids is not None else inside
    return AlertFilter(domains=parse_list(domain, Domain, "domain"), severities=parse_list(severity, Severity, "severity"),
                       statuses=parse_list(status, AlertStatus, "status"), kinds=parse_list(kind, AlertKind, "kind"),
                       sensor_ids=sensor_ids, opened_since=since, opened_until=until)


@router.get("", response_model=Page[AlertEvent], openapi_extra=policy(Role.VIEWER),
            responses=example_response(example_page(EXAMPLE_ALERT)))
async def list_alerts(
    request: Request,
    domain: Annotated[str | None, Query(description="Comma list of domains", examples=["traffic,waste"])] = None,
    severity: Annotated[str | None, Query(description="Comma list of severities", examples=["high,critical"])] = None,
    status: Annotated[str | None, Query(description="Comma list: open, acknowledged, resolved")] = None,
    kind: Annotated[str | None, Query(description="Comma list of alert kinds")] = None,
    sensor_id: Annotated[str | None, Query(max_length=80)] = None,
    area: Annotated[str | None, Query(description="min_lon,min_lat,max_lon,max_lat")] = None,
    since: Annotated[datetime | None, Query(description="Opened at or after")] = None,
    until: Annotated[datetime | None, Query(description="Opened before")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50, offset: Annotated[int, Query(ge=0, le=10**6)] = 0,
) -> Page[AlertEvent]:
    """Current state of every matching alert, most recently changed first."""
    for value, field in ((since, "since"), (until, "until")):
        if value is not None and value.tzinfo is None:
            raise ApiError(422, "INVALID_PARAMETER", "timestamp must carry a timezone", field)
    flt = build_filter(request, domain, severity, status, kind, sensor_id, area, since, until)
    state = request.app.state.api
    async with state.pool.acquire() as connection:
        events, total = await alert_store.list_alerts(
            connection, flt, limit, offset, live=list(state.hub.latest_by_alert.values()) if state.hub else None)
    return Page(items=events, total=total, limit=limit, offset=offset,
                next_offset=next_offset(offset, limit, total))


async def _current(request: Request, alert_id: str) -> tuple[AlertEvent, list[AlertEvent], object]:
    state = request.app.state.api
    async with state.pool.acquire() as connection:
        history = await alert_store.history(connection, alert_id)
    if state.hub is not None and alert_id in state.hub.latest_by_alert:
        # Events the hub consumed that the sink has not stored yet (it may lag the stream), so history and the
        # current state agree with the live feed.
        seen = {event.event_id for event in history}
        for event in [item.event for item in list(state.hub.buffer) if item.event.alert_id == alert_id] + [
                state.hub.latest_by_alert[alert_id]]:
            if event.event_id not in seen:  # redeliveries repeat an event id: keep one
                seen.add(event.event_id)
                history.append(event)
        history.sort(key=lambda event: event.occurred_at)
    if not history:
        raise ApiError(404, "ALERT_NOT_FOUND", f"no alert {alert_id!r}", "alert_id")
    return history[-1], history, state


@router.get("/{alert_id}", response_model=AlertDetail, openapi_extra=policy(Role.VIEWER))
async def get_alert(request: Request, alert_id: AlertIdPath) -> AlertDetail:
    """One alert: current state, explanation, the stored readings that contributed, and its history."""
    current, history, state = await _current(request, alert_id)
    contributing = current.explanation.contributing
    readings: list[ReadingPublic] = []
    if contributing:
        times = [reading.observed_at for reading in contributing]
        async with state.pool.acquire() as connection:
            rows = await connection.fetch(alert_store.CONTRIBUTING_SQL, current.sensor_id,
                                          [reading.seq for reading in contributing],
                                          min(times) - timedelta(seconds=1), max(times) + timedelta(seconds=1))
        readings = [ReadingPublic(sensor_id=current.sensor_id, **dict(row)) for row in rows]
    return AlertDetail(alert=current, history=history, contributing_readings=readings)


@router.post("/{alert_id}/actions", status_code=202, response_model=AlertActionAccepted,
             openapi_extra=policy(Role.OPERATOR),
             responses={409: {"model": ErrorBody, "description": "The alert is resolved"},
                        503: {"model": ErrorBody, "description": "Kafka did not acknowledge the command"}})
async def act_on_alert(request: Request, alert_id: AlertIdPath, body: AlertActionRequest):
    """Acknowledge, assign, comment or resolve. Accepted (202) once Kafka holds the command; the alert's new state
    arrives on the live stream when the owning service has applied it."""
    current, _, state = await _current(request, alert_id)
    if current.status == AlertStatus.RESOLVED:
        raise ApiError(409, "ALERT_RESOLVED", "the alert is already resolved", "alert_id")
    principal = request.state.principal
    action = AlertAction(action_id=str(uuid.uuid4()), alert_id=alert_id, sensor_id=current.sensor_id,
                         action=body.action, actor=principal.name, assignee=body.assignee, comment=body.comment,
                         requested_at=datetime.now(UTC))
    topic = state.settings.topic(ALERT_ACTIONS)
    if state.producer is None:
        raise ApiError(503, "KAFKA_UNAVAILABLE", "Kafka is not reachable yet; retry")
    try:
        await state.producer.send_and_wait(
            topic, jsonwire.dumps(action), key=action.sensor_id.encode(),
            headers=make_headers(ALERT_ACTIONS, "api", action.action_id))
    except Exception as problem:  # aiokafka raises several types for "not acknowledged"
        log.warning("alert action %s for %s not acknowledged by Kafka: %r", action.action, alert_id, problem)
        raise ApiError(503, "KAFKA_UNAVAILABLE", "the command could not be stored; retry") from problem
    state.metrics.actions.labels(action.action.value).inc()
    log.info("alert %s: %s by %s sent to %s", alert_id, action.action, action.actor, topic)
    accepted = AlertActionAccepted(action_id=action.action_id, alert_id=alert_id, action=action.action,
                                   actor=action.actor, requested_at=action.requested_at)
    return JSONResponse(accepted.model_dump(mode="json"), status_code=202)
