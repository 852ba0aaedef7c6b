"""Lone UTF-16 surrogate escapes ("\\ud800") are valid JSON text to the standard library but not Unicode: the HTTP
batch path and the Kafka-native gate refuse such readings as MALFORMED naming the field, never with a 500."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest

from schemas.rejections import RejectedReading
from services.common.readiness import CheckResult
from services.ingest.gate import GateLimits
from services.ingest.gate_event import gate_event
from services.ingest.http_app import create_app
from services.ingest.publisher import Publisher
from services.ingest.register_state import RegisterState
from services.ingest.runtime import GateRuntime
from services.ingest.settings import IngestSettings
from tests.support.ingest_factories import new_credential, registration

KEY, STORED = new_credential()
SENSOR = "traffic-unit-surrogate"
GOOD = '{"seq": 1, "observed_at": "2030-01-01T00:00:00Z", "metrics": {"intensity": 3}}'


class AckingProducer:
    """Acknowledges every batch at once and keeps what it was given."""

    def __init__(self) -> None:
        self.batches: list[list[dict]] = []

    async def partitions_for(self, topic):
        return {0}

    def create_batch(self):
        producer = self

        class Batch:
            def __init__(self) -> None:
                self.records: list[dict] = []
                producer.batches.append(self.records)

            def append(self, **record):
                self.records.append(record)
                return record

        return Batch()

    async def send_batch(self, batch, topic, *, partition):
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


class ReadyView:
    def __init__(self, state) -> None:
        self.state = state
        self.ready = asyncio.Event()
        self.ready.set()


def runtime() -> tuple[GateRuntime, AckingProducer]:
    state = RegisterState()
    state.put(registration(SENSOR, STORED))
    settings = IngestSettings(clock_skew_s=10 ** 9)
    producer = AckingProducer()
    gate = GateRuntime(settings, ReadyView(state), producer, Publisher(producer, settings.topic, 1.0, "http"),
                       GateLimits(clock_skew=__import__("datetime").timedelta(days=10 ** 4)))
    gate.producer_started.set()
    gate.kafka.last = CheckResult(ok=True, detail="answering")
    return gate, producer


# (reading text with a lone surrogate escape, the field the rejection must name)
CASES = [
    ('{"seq": 1, "observed_at": "\\ud800", "metrics": {"intensity": 3}}', "observed_at"),
    ('{"seq": 1, "sensor_id": "traffic-\\udfff", "observed_at": "2030-01-01T00:00:00Z", '
     '"metrics": {"intensity": 3}}', "sensor_id"),
    ('{"seq": 1, "observed_at": "2030-01-01T00:00:00Z", "metrics": {"int\\ud83density": 3}}',
     "metrics.int\\ud83density"),
    ('{"seq": 1, "observed_at": "2030-01-01T00:00:00Z", "metrics": {"intensity": 3}, "\\udc00": 1}', "\\udc00"),
    ('{"seq": 1, "observed_at": "2030-01-01T00:00:00Z", "metrics": {"intensity": ["\\ud800"]}}',
     "metrics.intensity[0]"),
]


@pytest.mark.parametrize(("text", "field"), CASES)
async def test_http_batch_with_a_lone_surrogate_is_malformed_with_its_field_not_a_500(text, field):
    gate, producer = runtime()
    transport = httpx.ASGITransport(app=create_app(gate.settings, gate), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        alone = await client.post("/v1/readings", content=f'{{"readings": [{text}]}}',
                                  headers={"Authorization": f"Bearer {KEY}"})
        mixed = await client.post("/v1/readings", content=f'{{"readings": [{GOOD}, {text}]}}',
                                  headers={"Authorization": f"Bearer {KEY}"})
    assert alone.status_code == 400, alone.text
    body = alone.json()
    assert body["reason"] == "MALFORMED" and body["outcomes"][0]["field"] == field
    assert "surrogate" in body["outcomes"][0]["detail"]
    assert mixed.status_code == 207, mixed.text
    assert [o["status"] for o in mixed.json()["outcomes"]] == ["accepted", "rejected"]
    assert mixed.json()["outcomes"][1]["reason"] == "MALFORMED"
    # The rejection records reached the producer as valid JSON, the offending text escaped.
    rejections = [RejectedReading.model_validate_json(record["value"]) for batch in producer.batches
                  for record in batch if b'"reason"' in record["value"]]
    assert len(rejections) == 2 and {r.field for r in rejections} == {field}


@pytest.mark.parametrize(("text", "field"), CASES)
def test_kafka_native_gate_refuses_a_lone_surrogate_as_malformed(text, field):
    gate, _ = runtime()
    from datetime import UTC, datetime

    record, labels = gate_event(gate, SENSOR.encode(), text.encode(), [("credential", KEY.encode())],
                                datetime.now(UTC))
    assert labels[:2] == ("rejected", "MALFORMED")
    rejection = RejectedReading.model_validate_json(record.value)
    assert rejection.field == field and orjson.loads(record.value)


async def test_surrogate_outside_the_readings_is_a_request_level_400():
    gate, _ = runtime()
    transport = httpx.ASGITransport(app=create_app(gate.settings, gate), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        response = await client.post("/v1/readings", content='{"readings": [], "\\ud800": 1}',
                                     headers={"authorization": f"Bearer {KEY}"})
    assert response.status_code == 400 and response.json()["reason"] == "MALFORMED"
