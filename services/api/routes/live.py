"""Live alert stream: Server-Sent Events with `Last-Event-ID` resume, and the WebSocket equivalent.

Event ids are Kafka position vectors of `citystream.alerts.v1` (see services.api.hub), so a reconnecting client
gets everything after the last event it saw: from the hub's buffer, or from Kafka when the buffer has moved on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

from schemas.alerts import AlertEvent
from schemas.common import Domain, Severity
from schemas.topics import ALERTS
from services.api.auth import SECURED, Role, policy, websocket_policy
from services.api.directory import contains
from services.api.errors import ERROR_RESPONSES, ApiError
from services.api.hub import format_vector, parse_vector
from services.api.hub_consumer import fetch_gap
from services.api.models import LiveTicket
from services.api.params import parse_bbox, parse_list
from services.common import jsonwire

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/live", tags=["live"], responses=ERROR_RESPONSES, dependencies=SECURED)
KEEPALIVE_S = 15.0


class LiveFilter:
    def __init__(self, request, domain: str | None, severity: str | None, area: str | None) -> None:
        self.domains = set(parse_list(domain, Domain, "domain"))
        self.severities = set(parse_list(severity, Severity, "severity"))
        self.area = parse_bbox(area, "area")
        self.directory = request.app.state.api.directory

    def matches(self, event: AlertEvent) -> bool:
        return ((not self.domains or event.domain.value in self.domains)
                and (not self.severities or event.severity.value in self.severities)
                and (self.area is None or contains(self.area, self.directory.location(event.sensor_id))))


def _resume_vector(hub, last_event_id: str | None):
    if not last_event_id:
        return None
    try:
        return parse_vector(last_event_id, len(hub.position))
    except ValueError as problem:
        raise ApiError(422, "INVALID_PARAMETER", str(problem), "Last-Event-ID") from problem


def alert_stream(state, live_filter: LiveFilter, resume_from) -> AsyncIterator[tuple[str, AlertEvent | None]]:
    """(event id, event) pairs; event None is a keepalive carrying the current position.

    Subscribes now, not at the first iteration: anything the hub consumes after this call reaches the client,
    even if the response takes a moment to start streaming."""
    hub = state.hub
    subscription, origin, replay, gaps = hub.subscribe(resume_from)
    state.metrics.live_clients.inc()
    return _stream(state, live_filter, origin, subscription, replay, gaps)


async def _stream(state, live_filter, origin, subscription, replay, gaps):
    hub = state.hub
    # The position taken at subscribe, not now: events queued since then are below `hub.vector` but still ahead
    # of this client, and an id that claimed them would let a reconnect skip them.
    sent = list(origin)

    def advance(vector) -> str:
        for partition, offset in enumerate(vector):
            sent[partition] = max(sent[partition], offset)
        return format_vector(tuple(sent))

    try:
        yield format_vector(tuple(sent)), None  # the client's starting point, even before any alert
        if gaps:
            settings = state.settings
            for _, _, event, vector in await fetch_gap(settings.kafka, settings.topic(ALERTS), gaps,
                                                       tuple(sent), f"citystream-api-{settings.instance_id}-gap"):
                event_id = advance(vector)
                if live_filter.matches(event):
                    yield event_id, event
        for item in replay:
            event_id = advance(item.vector)
            if live_filter.matches(item.event):
                yield event_id, item.event
        while not subscription.overflowed:
            try:
                item = await asyncio.wait_for(subscription.queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield format_vector(tuple(sent)), None
                continue
            event_id = advance(item.vector)
            if live_filter.matches(item.event):
                yield event_id, item.event
    finally:
        hub.unsubscribe(subscription)
        state.metrics.live_clients.dec()


def _ready_hub(request_or_socket):
    hub = request_or_socket.app.state.api.hub
    if hub is None or not hub.ready:
        raise ApiError(503, "NOT_READY", "the alert stream is starting; retry in a moment")
    return hub


@router.post("/tickets", status_code=201, response_model=LiveTicket, openapi_extra=policy(Role.VIEWER))
async def issue_ticket(request: Request) -> LiveTicket:
    """A single-use ticket for one live stream (`/v1/live/alerts?ticket=` or `/v1/live/alerts/ws?ticket=`), valid
    for `expires_in_s`. Browsers' EventSource and WebSocket cannot send the Authorization header, and tokens are
    never accepted in a URL; the ticket carries the caller's role and name, and opens nothing else."""
    principal = request.state.principal
    book = request.app.state.tickets
    secret = book.issue(principal.role.name.lower(), principal.name, time.monotonic())
    return LiveTicket(ticket=secret, expires_in_s=book.ttl_s)


@router.get("/alerts", openapi_extra=policy(Role.VIEWER, ticket=True), response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {"example": 'id: 12.5.0.7\nevent: alert\ndata: {...}\n\n'}},
                             "description": "Stream of `alert` events (AlertEvent JSON) and `position` events"}})
async def alerts_sse(
    request: Request,
    domain: Annotated[str | None, Query(description="Comma list of domains")] = None,
    severity: Annotated[str | None, Query(description="Comma list of severities")] = None,
    area: Annotated[str | None, Query(description="min_lon,min_lat,max_lon,max_lat")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=400)] = None,
    resume: Annotated[str | None, Query(max_length=400, description="Same as Last-Event-ID, for clients without headers")]
    = None,
) -> StreamingResponse:
    """Server-Sent Events of alert events. Reconnect with `Last-Event-ID` (or `?resume=`) to receive everything
    missed. Authenticate with the bearer header, or with `?ticket=` from `POST /v1/live/tickets` (browsers)."""
    hub = _ready_hub(request)
    live_filter = LiveFilter(request, domain, severity, area)
    resume_from = _resume_vector(hub, last_event_id or resume)
    state = request.app.state.api

    stream = alert_stream(state, live_filter, resume_from)

    async def frames():
        async for event_id, event in stream:
            if event is None:
                yield f"id: {event_id}\nevent: position\ndata: {{}}\n\n".encode()
            else:
                yield b"id: " + event_id.encode() + b"\nevent: alert\ndata: " + jsonwire.dumps(event) + b"\n\n"

    return StreamingResponse(frames(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.websocket("/alerts/ws", name="alerts_ws")
@websocket_policy(Role.VIEWER, ticket=True)
async def alerts_ws(
    websocket: WebSocket,
    domain: str | None = None, severity: str | None = None, area: str | None = None, resume: str | None = None,
) -> None:
    """Messages `{"id": ..., "type": "alert"|"position", "event": AlertEvent?}`; resume with `?resume=<id>`;
    authenticate with the bearer header or `?ticket=` from `POST /v1/live/tickets`."""
    try:
        hub = _ready_hub(websocket)
        live_filter = LiveFilter(websocket, domain, severity, area)
        resume_from = _resume_vector(hub, resume)
    except ApiError as problem:
        await websocket.close(code=1008, reason=problem.message[:120])
        return
    await websocket.accept()
    try:
        async for event_id, event in alert_stream(websocket.app.state.api, live_filter, resume_from):
            message = {"id": event_id, "type": "position" if event is None else "alert"}
            if event is not None:
                message["event"] = event.model_dump(mode="json", exclude_none=True)
            await websocket.send_bytes(jsonwire.dumps(message))
    except WebSocketDisconnect:
        log.debug("websocket client left")

