"""The register's FastAPI app: wires pool, producer, outbox relay and routers; /healthz, /readyz, /metrics."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from fastapi import FastAPI, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from schemas.topics import BY_NAME, REGISTER_SENSORS
from services.common.body_limit import BodySizeLimit
from services.common.db import close_pool, create_pool
from services.common.kafka import create_topics, make_producer
from services.common.metrics import metrics_payload
from services.common.readiness import KafkaReachability, Readiness, database_check
from services.common.source_limit import SourceLimiter
from services.register import routes_access, routes_public, routes_rejections, routes_sensors
from services.register.credential_service import CredentialService
from services.register.deps import Context, RegisterContext
from services.register.http_errors import install_error_handlers, payload_too_large
from services.register.policy import SECURED, Access, access
from services.register.relay import OutboxRelay
from services.register.retention import RetentionTask
from services.register.service import RegisterService, utc_now
from services.register.settings import RegisterSettings

log = logging.getLogger(__name__)


def create_app(settings: RegisterSettings, *, clock: Callable[[], datetime] = utc_now) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        topic = settings.topic(REGISTER_SENSORS)
        await create_topics(settings.kafka, [BY_NAME[REGISTER_SENSORS]], prefix=settings.topic_prefix)
        pool = await create_pool(settings.database_url)
        producer = make_producer(settings.kafka, f"register-{settings.instance_id or 'main'}", linger_ms=0)
        await producer.start()
        relay = OutboxRelay(pool, producer, topic, f"register/{settings.instance_id or 'main'}",
                            settings.register_relay_poll_s)
        service = RegisterService(pool, rotation_overlap_s=settings.register_rotation_overlap_s,
                                  on_commit=relay.wake, clock=clock)
        credentials = CredentialService(pool, rotation_overlap_s=settings.register_rotation_overlap_s,
                                        on_commit=relay.wake, clock=clock)
        app.state.register = RegisterContext(settings, pool, producer, relay, service, credentials, clock)
        if settings.register_relay_enabled:
            relay.start()
        retention = RetentionTask(settings.register_retention_database_url or settings.database_url,
                                  settings.register_retention_interval_s, settings.register_retention_initial_delay_s,
                                  settings.retention_unregistered_days, clock)
        if settings.register_retention_interval_s > 0:
            retention.start()
        log.info("register ready: topic %s, relay %s, retention every %s s", topic,
                 "on" if settings.register_relay_enabled else "off", settings.register_retention_interval_s or "-")
        try:
            yield
        finally:
            await retention.stop()
            await relay.stop()
            await producer.stop()
            await close_pool(pool)

    # Deny by default: every route (the docs included, hence no built-in docs routes) declares its access policy.
    app = FastAPI(title="CityStream sensor register", version="1.0.0", lifespan=lifespan,
                  description="Declare before you publish: the admission policy of CityStream's data plane.",
                  openapi_url=None, docs_url=None, redoc_url=None, dependencies=SECURED)
    # Public removal requests land in the append-only audit log: one limiter per process, keyed by client address.
    app.state.removal_limiter = SourceLimiter(settings.register_removals_per_minute, settings.register_removals_burst)
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.register_max_body_bytes, too_large=payload_too_large)
    install_error_handlers(app)
    for module in (routes_sensors, routes_access, routes_public, routes_rejections):
        # Flat on the app (not include_router, which FastAPI now resolves lazily), so app.routes lists every route
        # the policy test must see; each router carries the policy check itself.
        app.router.routes.extend(module.router.routes)

    @app.get("/healthz", tags=["ops"], openapi_extra=access(Access.PUBLIC))
    async def healthz() -> dict:
        return {"status": "ok"}

    kafka = KafkaReachability(settings.topic(REGISTER_SENSORS))

    @app.get("/readyz", tags=["ops"], openapi_extra=access(Access.PUBLIC), response_model=Readiness,
             responses={503: {"model": Readiness, "description": "A dependency does not answer"}})
    async def readyz(context: Context) -> JSONResponse:
        """The readiness contract: the database answers, a Kafka broker answers for the register topic (asked at
        most once a second). Details are reason codes only: this endpoint is public."""
        answer = Readiness.of({"database": await database_check(context.pool),
                               "kafka": await kafka.check(context.producer.client)})
        return JSONResponse(answer.model_dump(), status_code=answer.http_status)

    @app.get("/metrics", tags=["ops"], openapi_extra=access(Access.PUBLIC))
    async def metrics() -> Response:
        payload, content_type = metrics_payload()
        return Response(payload, media_type=content_type)

    @app.get("/openapi.json", include_in_schema=False, openapi_extra=access(Access.PUBLIC))
    async def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, openapi_extra=access(Access.PUBLIC))
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} — API")

    return app
