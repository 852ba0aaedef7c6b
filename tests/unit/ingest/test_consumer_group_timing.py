"""The gate's and the sink's group consumers take their session timeout (and a heartbeat interval consistent with
it) from CITYSTREAM_INGEST_CONSUMER_SESSION_TIMEOUT_S; unset, they keep aiokafka's defaults."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import pydantic
import pytest
from aiokafka import AIOKafkaConsumer

from services.common import kafka as common_kafka
from services.ingest import gate_loop, sink_worker
from services.ingest.settings import IngestSettings


class Built(Exception):
    """Stops the service right after it built its consumer."""


def capture_consumers(monkeypatch, module) -> list[AIOKafkaConsumer]:
    """Replace `module.make_consumer` by the real one that records what it built, then stops the caller."""
    built: list[AIOKafkaConsumer] = []

    def make_and_stop(*args, **kwargs):
        built.append(common_kafka.make_consumer(*args, **kwargs))
        raise Built

    monkeypatch.setattr(module, "make_consumer", make_and_stop)
    return built


def test_defaults_are_aiokafkas_and_the_setting_comes_from_the_environment(monkeypatch):
    aiokafka_defaults = inspect.signature(AIOKafkaConsumer).parameters
    assert IngestSettings().consumer_group_timing == {
        "session_timeout_ms": aiokafka_defaults["session_timeout_ms"].default,
        "heartbeat_interval_ms": aiokafka_defaults["heartbeat_interval_ms"].default}
    monkeypatch.setenv("CITYSTREAM_INGEST_CONSUMER_SESSION_TIMEOUT_S", "6.5")
    assert IngestSettings().consumer_group_timing == {"session_timeout_ms": 6500, "heartbeat_interval_ms": 1950}
    monkeypatch.setenv("CITYSTREAM_INGEST_CONSUMER_SESSION_TIMEOUT_S", "5")  # below the broker's 6 s floor
    with pytest.raises(pydantic.ValidationError):
        IngestSettings()


async def test_the_gate_consumer_is_built_with_the_session_timeout(monkeypatch):
    built = capture_consumers(monkeypatch, gate_loop)
    settings = IngestSettings(consumer_session_timeout_s=7.0)

    async def ready(timeout_s: float) -> None: ...

    with pytest.raises(Built):
        await gate_loop.run_gate_loop(SimpleNamespace(settings=settings, wait_ready=ready))
    consumer, = built
    await consumer.stop()  # never started: this only closes its client
    assert (consumer._session_timeout_ms, consumer._heartbeat_interval_ms) == (7000, 2100)
    assert consumer._group_id == f"{settings.gate_app_id}.raw"


async def test_the_sink_consumer_is_built_with_the_session_timeout(monkeypatch):
    built = capture_consumers(monkeypatch, sink_worker)
    settings = IngestSettings(consumer_session_timeout_s=8.0)
    with pytest.raises(Built):
        await sink_worker.SinkWorker(settings).run()
    consumer, = built
    await consumer.stop()
    assert (consumer._session_timeout_ms, consumer._heartbeat_interval_ms) == (8000, 2400)
    assert consumer._group_id == settings.topic_prefix + settings.sink_group_id
