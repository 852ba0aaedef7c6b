"""The FastAPI application: wiring of settings, clients, background followers, middleware and routers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from schemas.topics import ALERTS, REGISTER_SENSORS
from services.api.auth import SECURED
from services.api.directory import register_follower
from services.api.errors import install_error_handlers, payload_too_large
from services.api.hub import AlertHub
from services.api.hub_consumer import feed_hub
from services.api.observe import RequestMetrics
from services.api.routes import alerts, audit, live, ngsi_ld, ops, sensors
from services.api.settings import ApiSettings, parse_tokens
from services.api.state import ApiState
from services.api.tickets import TicketBook
from services.common.body_limit import BodySizeLimit
from services.common.db import close_pool, create_pool
from services.common.kafka import make_producer

log = logging.getLogger(__name__)

DESCRIPTION = """Operations API of CityStream: sensor time series, alerts and operator commands, a live alert stream
(Server-Sent Events with `Last-Event-ID` resume, or WebSocket) and the ops-centre page at `/ops/`.

Authentication: `Authorization: Bearer <token>`, only in the header (a token in the URL is refused). Browsers open
the live stream with a single-use ticket from `POST /v1/live/tickets` (`?ticket=`). Roles: viewer (read),
operator (also acts on alerts), admin (also reads the operator audit, `/v1/audit/operator-actions`). Every error has the body `{"error": {"code", "message", "field"}}`."""


def _client_id(settings: ApiSettings, role: str) -> str:
    return f"citystream-api-{settings.instance_id or 'local'}-{role}"


@asynccontextmanager
async def lifespan(app: FastAPI):
    state: ApiState = app.state.api
    settings = state.settings
    state.pool = await create_pool(settings.reader_database_url, min_size=1, max_size=8)
    state.hub = AlertHub(settings.api_live_buffer_events)
    connected = asyncio.Event()
    state.tasks = [
        # In the background: with Kafka down at start-up the API still serves reads, /healthz, and a /readyz of 503;
        # the followers start once the producer has reached Kafka, rather than spinning against a dead broker.
        asyncio.create_task(_start_producer(state, connected)),
        asyncio.create_task(_after(connected, _supervise("alert hub", lambda: feed_hub(
            state.hub, settings.kafka, settings.topic(ALERTS), settings.api_live_window_s,
            _client_id(settings, "hub"), on_event=lambda _: state.metrics.alert_events.inc())))),
        asyncio.create_task(_after(connected, _supervise("sensor directory", lambda: register_follower(
            state.directory, settings.kafka, settings.topic(REGISTER_SENSORS),
            _client_id(settings, "register")).run_forever()))),
    ]
    try:
        yield
    finally:
        for task in state.tasks:
            task.cancel()
        for task in state.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if state.producer is not None:
            await state.producer.stop()
        await close_pool(state.pool)


async def _after(event: asyncio.Event, work) -> None:
    try:
        await event.wait()
    except asyncio.CancelledError:
        work.close()  # never started: close the coroutine so it is not reported as never awaited
        raise
    await work


async def _start_producer(state: ApiState, connected: asyncio.Event) -> None:
    """Connect the command producer, retrying with backoff; `state.producer` is set only once it is connected."""
    delay_s = 0.5
    while True:
        producer = make_producer(state.settings.kafka, _client_id(state.settings, "actions"))
        try:
            await producer.start()
        except asyncio.CancelledError:
            await producer.stop()
            raise
        except Exception as problem:  # noqa: BLE001 - whatever the cause, retry; the warning says which
            log.warning("command producer cannot reach Kafka (%r); retrying in %.1f s", problem, delay_s)
            await producer.stop()
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, 15.0)
        else:
            state.producer = producer
            connected.set()
            return


async def _supervise(name: str, run) -> None:
    """Keep a follower running; a broker outage restarts it with backoff instead of killing the API."""
    delay_s = 0.5
    while True:
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s stopped; restarting in %.1f s", name, delay_s)
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, 15.0)


def create_app(settings: ApiSettings) -> FastAPI:
    # Default docs routes carry no policy; services.api.routes.ops serves /openapi.json and /docs with one.
    app = FastAPI(title="CityStream operations API", version="1.0.0", description=DESCRIPTION, lifespan=lifespan,
                  openapi_url=None, docs_url=None, redoc_url=None, dependencies=SECURED)
    app.state.api = ApiState(settings)
    app.state.tokens = parse_tokens(settings.api_tokens)
    app.state.tickets = TicketBook(settings.api_live_ticket_ttl_s)
    install_error_handlers(app)
    for module in (ops, sensors, alerts, live, audit, ngsi_ld):
        # Flat on the app (not include_router), so app.routes lists every route the policy test must see.
        app.router.routes.extend(module.router.routes)

    app.add_middleware(RequestMetrics, metrics=app.state.api.metrics)
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.api_max_body_bytes, too_large=payload_too_large)
    return app
