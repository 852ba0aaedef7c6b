"""A request whose credential fails is answered 401 with one summary whatever JSON its readings hold: a sensor id
that is a list or an object (unhashable) once made the one-sensor claim check answer 500."""

from __future__ import annotations

import httpx
import orjson
import pytest

from services.ingest.http_app import create_app
from tests.unit.ingest.test_http_surrogates import SENSOR, runtime

WRONG = "k0.not-a-credential"


@pytest.mark.parametrize(("readings", "count"), [
    ([{"sensor_id": [{"a": 1}], "seq": 1}, {"sensor_id": {"b": []}, "seq": 2}], 2),
    ([{"sensor_id": [], "seq": 1}], 1),
    ([[1, 2], None, "x", {"sensor_id": 7}], 4),
    ([{"sensor_id": SENSOR, "seq": 1}, {"sensor_id": [SENSOR]}], 2),
])
async def test_a_failing_credential_is_a_401_summary_whatever_the_readings_hold(readings, count):
    gate, producer = runtime()
    transport = httpx.ASGITransport(app=create_app(gate.settings, gate), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        response = await client.post("/v1/readings", content=orjson.dumps({"readings": readings}),
                                     headers={"Authorization": f"Bearer {WRONG}", "content-type": "application/json"})
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["reason"] == "BAD_CREDENTIALS" and body["rejected"] == count and "outcomes" not in body
    # At most one dead letter for the whole request, carrying the count, never the readings.
    letters = [orjson.loads(record["value"]) for batch in producer.batches for record in batch]
    assert len(letters) <= 1
    assert all(letter["reason"] == "BAD_CREDENTIALS" for letter in letters)
