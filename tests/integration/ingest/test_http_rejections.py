"""HTTP ingest against the real broker: each rejection path gets its status and reason, and reaches no readings topic."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from schemas.register import CredentialKind, SensorStatus
from schemas.rejections import RejectedReading
from schemas.topics import REJECTED_READINGS
from services.common import jsonwire
from tests.integration.ingest.helpers import (
    READINGS_TOPICS,
    bearer,
    drain,
    http_ingest,
    ingest_settings,
    publish_register,
)
from tests.support.ingest_factories import new_credential, reading, registration


@pytest.fixture
def uid() -> str:
    return uuid.uuid4().hex[:8]


async def test_every_rejection_path_has_its_status_and_reason_and_reaches_no_readings_topic(settings, uid):
    now = datetime.now(UTC)
    good_key, good_hash = new_credential()
    expired_key, expired_hash = new_credential()
    other_key, other_hash = new_credential()
    gateway_key, gateway_hash = new_credential(CredentialKind.GATEWAY)
    good, expired, other = f"traffic-{uid}-good", f"traffic-{uid}-expired", f"traffic-{uid}-other"
    await publish_register(settings, registration(good, good_hash, gateway_hash),
                           registration(expired, expired_hash, active_until=now - timedelta(days=1)),
                           registration(other, other_hash))
    old = now - timedelta(days=8)
    cases = [
        ("unknown sensor", gateway_key, [reading(1, sensor_id=f"traffic-{uid}-nobody")], 404, "UNKNOWN_SENSOR"),
        ("expired sensor", expired_key, [reading(1)], 403, "SENSOR_EXPIRED"),
        ("wrong credential", good_key.split(".")[0] + ".not-the-secret", [reading(1)], 401, "BAD_CREDENTIALS"),
        ("no credential", None, [reading(1)], 401, "BAD_CREDENTIALS"),
        ("other sensor", good_key, [reading(1, sensor_id=other)], 403, "SENSOR_MISMATCH"),
        ("undeclared metric", good_key, [reading(1, voltage=230.0)], 422, "UNDECLARED_METRIC"),
        ("out of range", good_key, [reading(1, averageVehicleSpeed=412.0)], 422, "OUT_OF_RANGE"),
        ("future", good_key, [reading(1, now + timedelta(minutes=10))], 422, "TIMESTAMP_IN_FUTURE"),
        ("ancient", good_key, [reading(1, old)], 422, "TIMESTAMP_TOO_OLD"),
        ("mass assignment", good_key, [reading(1) | {"register_version": 99}], 400, "MALFORMED"),
    ]
    async with http_ingest(ingest_settings(settings)) as (client, _):
        for name, credential, readings, status, reason in cases:
            response = await client.post("/v1/readings", json={"readings": readings},
                                         headers=bearer(credential) if credential else {})
            body = response.json()
            assert (response.status_code, body.get("reason")) == (status, reason), (name, body)
            if status == 401:  # refused whole: one summary, no reading looked at
                assert (body["rejected"], body["field"], "outcomes" in body) == (len(readings), "credential", False)
            else:
                assert body["outcomes"][0]["status"] == "rejected" and body["outcomes"][0]["field"], name
        # NaN and Infinity are not JSON; senders that emit them anyway get OUT_OF_RANGE, not a parse error.
        for literal in (b"NaN", b"Infinity", b"-Infinity"):
            raw = (b'{"readings": [{"seq": 1, "observed_at": "%s", "metrics": {"intensity": %s}}]}'
                   % (now.isoformat().encode(), literal))
            response = await client.post("/v1/readings", content=raw, headers=bearer(good_key))
            assert (response.status_code, response.json()["reason"]) == (422, "OUT_OF_RANGE")
            assert response.json()["outcomes"][0]["field"] == "metrics.intensity"
        response = await client.post("/v1/readings", content=b"{not json", headers=bearer(good_key))
        assert (response.status_code, response.json()["reason"]) == (400, "MALFORMED")
    assert await drain(settings, *READINGS_TOPICS) == []
    rejected = [jsonwire.loads(record.value) for record in await drain(settings, REJECTED_READINGS)]
    # ... plus one dead letter for the body that was not JSON at all.
    assert sorted(r["reason"] for r in rejected) == sorted([c[4] for c in cases] + ["OUT_OF_RANGE"] * 3
                                                           + ["MALFORMED"])
    assert [r["payload"] for r in rejected if r["payload"] == "{not json"] == ["{not json"]


async def test_suspension_while_running_bites_at_once(settings, uid):
    key, stored = new_credential()
    sensor = f"traffic-{uid}-susp"
    await publish_register(settings, registration(sensor, stored))
    async with http_ingest(ingest_settings(settings)) as (client, runtime):
        first = await client.post("/v1/readings", json={"readings": [reading(1)]}, headers=bearer(key))
        assert first.status_code == 200
        await publish_register(settings, registration(sensor, stored, version=2, status=SensorStatus.SUSPENDED))
        for _ in range(50):  # the view applies changes as they arrive; poll only until it has
            if runtime.view.state.get(sensor).record.version == 2:
                break
            await asyncio.sleep(0.05)
        second = await client.post("/v1/readings", json={"readings": [reading(2)]}, headers=bearer(key))
        assert (second.status_code, second.json()["reason"]) == (403, "SENSOR_NOT_ACTIVE")
    stored_seqs = [jsonwire.loads(r.value)["seq"] for r in await drain(settings, *READINGS_TOPICS)]
    assert stored_seqs == [1]


async def test_batch_and_body_limits(settings, uid):
    key, stored = new_credential()
    await publish_register(settings, registration(f"traffic-{uid}-big", stored))
    async with http_ingest(ingest_settings(settings, max_body_bytes=2 * 1024 * 1024)) as (client, _):
        batch = {"readings": [reading(n) for n in range(10_001)]}
        response = await client.post("/v1/readings", json=batch, headers=bearer(key))
        assert (response.status_code, response.json()["reason"]) == (413, "BATCH_TOO_LARGE")

        async def chunked_body():
            yield b'{"readings": ['
            for _ in range(3000):  # ~3 MB, no Content-Length: the limit is enforced while streaming
                yield b'{"seq": 1, "observed_at": "2026-01-01T00:00:00Z", "metrics": {"intensity": 1.0}},' * 10
            yield b"]}"

        response = await client.post("/v1/readings", content=chunked_body(), headers=bearer(key))
        assert "content-length" not in response.request.headers
        assert (response.status_code, response.json()["reason"]) == (413, "PAYLOAD_TOO_LARGE")
        sized = b"x" * (2 * 1024 * 1024 + 1)
        response = await client.post("/v1/readings", content=sized, headers=bearer(key))
        assert (response.status_code, response.json()["reason"]) == (413, "PAYLOAD_TOO_LARGE")
        response = await client.post("/v1/readings", content=b"seq=1&intensity=3", headers=bearer(key))
        assert (response.status_code, response.json()["reason"]) == (400, "MALFORMED")
        response = await client.post("/v1/readings", json={"readings": [reading(1)], "owner": "x"},
                                     headers=bearer(key))
        assert (response.status_code, response.json()["reason"], response.json()["field"]) == (
            400, "MALFORMED", "readings")
    assert await drain(settings, *READINGS_TOPICS) == []
    # Refused whole, never silently dropped: each request left one dead letter with the start of its body.
    letters = [RejectedReading.model_validate_json(r.value) for r in await drain(settings, REJECTED_READINGS)]
    assert sorted(letter.reason.value for letter in letters) == sorted(
        ["BATCH_TOO_LARGE", "PAYLOAD_TOO_LARGE", "PAYLOAD_TOO_LARGE", "MALFORMED", "MALFORMED"])
    assert all(letter.source == "http" and isinstance(letter.payload, str) and len(letter.payload) <= 2048
               for letter in letters)
    chunked = next(letter for letter in letters if letter.payload.startswith('{"readings": [{"seq": 1'))
    assert chunked.reason.value == "PAYLOAD_TOO_LARGE" and "whole request refused" in chunked.detail
    assert any(letter.payload == "seq=1&intensity=3" for letter in letters)


async def test_one_flooding_sensor_is_limited_while_others_see_no_429(settings, uid):
    flood_key, flood_hash = new_credential()
    calm = [new_credential() for _ in range(3)]
    await publish_register(settings, registration(f"traffic-{uid}-flood", flood_hash, rate_limit_per_minute=20),
                           *(registration(f"traffic-{uid}-calm{n}", stored, rate_limit_per_minute=20)
                             for n, (_, stored) in enumerate(calm)))
    async with http_ingest(ingest_settings(settings)) as (client, _):
        statuses = {"flood": [], "calm": []}
        for round_number in range(5):
            flood = await client.post("/v1/readings", headers=bearer(flood_key),
                                      json={"readings": [reading(round_number * 10 + n) for n in range(10)]})
            statuses["flood"].append(flood.status_code)
            for key, _ in calm:
                calm_answer = await client.post("/v1/readings", headers=bearer(key),
                                                json={"readings": [reading(round_number)]})
                statuses["calm"].append(calm_answer.status_code)
        assert statuses["calm"] == [200] * 15
        assert statuses["flood"][:2] == [200, 200] and statuses["flood"][2:] == [429, 429, 429]
        assert int(flood.headers["Retry-After"]) >= 1 and flood.json()["reason"] == "RATE_LIMITED"
    admitted = [jsonwire.loads(r.value)["sensor_id"] for r in await drain(settings, *READINGS_TOPICS)]
    assert admitted.count(f"traffic-{uid}-flood") == 20


async def test_lone_surrogate_escapes_are_malformed_with_their_field_never_a_500(settings, uid):
    """The standard-library fallback (there for NaN) accepts "\\ud800"; orjson cannot write it back: the reading
    must be refused as MALFORMED naming the field, its rejection record stored escaped, and no reading produced."""
    key, stored = new_credential()
    await publish_register(settings, registration(f"traffic-{uid}-surr", stored))
    now = datetime.now(UTC).isoformat().encode()
    good = b'{"seq": 1, "observed_at": "%s", "metrics": {"intensity": 3}}' % now
    cases = [
        (b'{"seq": 2, "observed_at": "\\ud800", "metrics": {"intensity": 3}}', "observed_at"),
        (b'{"seq": 3, "observed_at": "%s", "metrics": {"int\\udfffensity": NaN}}' % now, "metrics.int\\udfffensity"),
    ]
    async with http_ingest(ingest_settings(settings)) as (client, _):
        for text, field in cases:
            response = await client.post("/v1/readings", content=b'{"readings": [%s]}' % text, headers=bearer(key))
            assert response.status_code == 400, response.text
            outcome = response.json()["outcomes"][0]
            assert (response.json()["reason"], outcome["field"]) == ("MALFORMED", field)
        mixed = await client.post("/v1/readings", content=b'{"readings": [%s, %s]}' % (good, cases[0][0]),
                                  headers=bearer(key))
        assert mixed.status_code == 207, mixed.text
    assert [jsonwire.loads(r.value)["seq"] for r in await drain(settings, *READINGS_TOPICS)] == [1]
    rejected = [jsonwire.loads(record.value) for record in await drain(settings, REJECTED_READINGS)]
    assert sorted((r["seq"], r["reason"], r["field"]) for r in rejected) == [
        (2, "MALFORMED", "observed_at"), (2, "MALFORMED", "observed_at"), (3, "MALFORMED", "metrics.int\\udfffensity")]


async def test_prefer_return_minimal_lists_only_the_rejected_readings_with_the_same_status_and_counts(settings, uid):
    key, key_hash = new_credential()
    sensor = f"traffic-{uid}-minimal"
    await publish_register(settings, registration(sensor, key_hash))
    mixed = [reading(1), reading(2, voltage=230.0), reading(3)]
    async with http_ingest(ingest_settings(settings)) as (client, _):
        full = await client.post("/v1/readings", json={"readings": mixed}, headers=bearer(key))
        minimal = await client.post("/v1/readings", json={"readings": [reading(4), reading(5, voltage=1.0),
                                                                       reading(6)]},
                                    headers=bearer(key) | {"Prefer": "handling=lenient, return=minimal"})
        clean = await client.post("/v1/readings", json={"readings": [reading(7)]},
                                  headers=bearer(key) | {"Prefer": 'return="minimal"'})
    assert (full.status_code, "preference-applied" in full.headers) == (207, False)
    assert [o["status"] for o in full.json()["outcomes"]] == ["accepted", "rejected", "accepted"]
    assert (minimal.status_code, minimal.headers["preference-applied"]) == (207, "return=minimal")
    body = minimal.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert [(o["index"], o["status"], o["reason"], o["field"], o["seq"]) for o in body["outcomes"]] == [
        (1, "rejected", "UNDECLARED_METRIC", "metrics.voltage", 5)]
    assert (clean.status_code, clean.json(), clean.headers["preference-applied"]) == (
        200, {"accepted": 1, "rejected": 0, "outcomes": []}, "return=minimal")
    stored = sorted(jsonwire.loads(record.value)["seq"] for record in await drain(settings, *READINGS_TOPICS))
    assert stored == [1, 3, 4, 6, 7]
