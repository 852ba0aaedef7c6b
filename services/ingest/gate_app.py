"""The Kafka-native gate worker: a Faust app (`app`) admitting `citystream.readings.raw.v1` into the readings topics.

The credential travels in the `credential` header, the sensor id in the key (and optionally the value). Each record
passes the same `admit` as the HTTP path; admitted ones go to `citystream.readings.<domain>.v1`, refused or
unreadable ones to `citystream.readings.rejected.v1`, and the worker carries on. Faust runs the worker (lifecycle,
signals, web pages); the raw topic is consumed by the batch loop in `gate_loop`, one of its tasks.
"""

from __future__ import annotations

import logging

import faust
from faust.app.base import BootStrategy

from services.common.kafka import faust_credentials
from services.common.readiness import CheckResult, readiness
from services.ingest.gate_loop import run_gate_loop
from services.ingest.runtime import GateRuntime
from services.ingest.settings import IngestSettings

log = logging.getLogger(__name__)


class GateBoot(BootStrategy):
    """Web pages, producer and tasks; no Faust consumer: the raw topic is consumed by `gate_loop` (a Faust
    consumer without agents or tables would have nothing to subscribe to)."""

    enable_kafka_consumer = False


class GateApp(faust.App):
    BootStrategy = GateBoot


def build_app(settings: IngestSettings) -> faust.App:
    """The Faust app (`app`) with its task `admit_raw_readings`; the entrypoint builds it once from settings."""
    app = GateApp(settings.gate_app_id, broker=f"kafka://{settings.kafka_bootstrap}",
                  broker_credentials=faust_credentials(settings.kafka), value_serializer="raw",
                  key_serializer="raw", web_port=settings.gate_port, datadir=settings.gate_data_dir,
                  topic_disable_leader=True, autodiscover=False, web_enabled=True, producer_acks=-1)
    # aiokafka clients need the running loop, so the runtime is built by the app's start-up task.
    holder: dict[str, GateRuntime] = {}

    @app.task
    async def admit_raw_readings() -> None:
        runtime = holder["runtime"] = GateRuntime.build(settings, "kafka")
        runtime.start()
        try:
            await runtime.wait_ready(timeout_s=600)
            log.info("gate ready: %d sensors in the register view", len(runtime.view.state))
            await run_gate_loop(runtime)  # until the worker cancels this task at shutdown
        finally:
            await runtime.stop()

    @app.page("/readyz")
    async def readyz(web, request):
        """The readiness contract (services/common/readiness.py): register view caught up, Kafka answering."""
        runtime = holder.get("runtime")
        checks = runtime.checks() if runtime else {"runtime": CheckResult(ok=False, detail="starting")}
        body, status = readiness(checks)
        return web.json(body, status=status)

    @app.page("/healthz")
    async def healthz(web, request):
        return web.json({"status": "ok"})

    @app.page("/metrics")
    async def prometheus(web, request):
        from services.common.metrics import metrics_payload

        payload, content_type = metrics_payload()
        return web.bytes(payload, content_type=content_type.split(";")[0])

    return app


