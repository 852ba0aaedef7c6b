"""The sink process: the SinkWorker loop plus /healthz, /readyz and /metrics on the sink port."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response

from services.common.collector import settle_when_ready
from services.common.metrics import metrics_payload
from services.common.readiness import Readiness, check
from services.ingest.settings import IngestSettings
from services.ingest.sink_worker import SinkWorker

log = logging.getLogger(__name__)


def create_sink_app(settings: IngestSettings) -> FastAPI:
    worker = SinkWorker(settings)

    async def run_forever() -> None:
        backoff_s = 1.0
        while not worker.stopping.is_set():
            try:
                await worker.run()
            except asyncio.CancelledError:
                raise
            except Exception:  # Kafka gone at start-up or mid-run: offsets are uncommitted, so nothing is lost
                log.exception("sink stopped; restarting in %.1f s", backoff_s)
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 30.0)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        task = asyncio.create_task(run_forever(), name="sink")
        # Each batch allocates several objects per record: keep the collector off what the process holds for good.
        settling = asyncio.create_task(settle_when_ready(None), name="gc-settle")
        try:
            yield
        finally:
            settling.cancel()
            await asyncio.gather(settling, return_exceptions=True)
            worker.stopping.set()
            try:
                await asyncio.wait_for(asyncio.shield(task), 5)
            except (asyncio.TimeoutError, Exception):
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    app = FastAPI(title="CityStream ingest sink", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
    async def readyz(response: Response) -> Readiness:
        """The readiness contract (services/common/readiness.py): the database answers, the consumer has joined
        its group (it holds partitions, or is a spare member of a group with more members than partitions)."""
        answer = Readiness.of({"database": check(worker.database_ok, "answering", "unavailable"),
                               "consumer": check(worker.consumer_joined, "joined", "not_joined")})
        response.status_code = answer.http_status
        return answer

    @app.get("/metrics")
    async def prometheus() -> Response:
        payload, content_type = metrics_payload()
        return Response(payload, media_type=content_type)

    return app
