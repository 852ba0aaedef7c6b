"""/readyz over the real dependencies: ready when Kafka, the database, the alert stream and the register are;
503 (quickly, with the failing check named) when Kafka is unreachable, while /healthz and reads keep answering."""

from __future__ import annotations

import gc
import time

import httpx

from tests.integration.api.support import OPERATOR, VIEWER, alert_event, free_port, insert_alert_events, running_api


async def test_ready_names_every_check(settings):
    async with running_api(settings) as (base, app), httpx.AsyncClient(base_url=base) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {
            "database": {"ok": True, "detail": "answering"}, "kafka": {"ok": True, "detail": "answering"},
            "alert_stream": {"ok": True, "detail": "caught_up"}, "register": {"ok": True, "detail": "caught_up"}}}
        assert app.state.api.hub.caught_up


async def test_unreachable_kafka_answers_503_quickly_and_reads_still_work(settings):
    opened = alert_event(f"traffic-t{free_port()}")
    await insert_alert_events(settings.database_url, [opened])
    nowhere = f"127.0.0.1:{free_port()}"  # nothing listens there
    async with running_api(settings, wait_ready=False, kafka_bootstrap=nowhere) as (base, _), \
            httpx.AsyncClient(base_url=base, timeout=10) as client:
        for _ in range(3):  # the first answer and the cached ones alike
            started = time.monotonic()
            answer = await client.get("/readyz")
            assert time.monotonic() - started < 2.5
            assert answer.status_code == 503
            body = answer.json()
            assert body["status"] == "not_ready"
            assert not body["checks"]["kafka"]["ok"] and not body["checks"]["alert_stream"]["ok"]
            assert body["checks"]["database"] == {"ok": True, "detail": "answering"}
        assert (await client.get("/healthz")).status_code == 200
        listed = await client.get("/v1/alerts", params={"sensor_id": opened.sensor_id}, headers=VIEWER)
        assert listed.status_code == 200 and [item["alert_id"] for item in listed.json()["items"]] == [opened.alert_id]
        refused = await client.post(f"/v1/alerts/{opened.alert_id}/actions", json={"action": "acknowledge"},
                                    headers=OPERATOR)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "KAFKA_UNAVAILABLE"
        live = await client.get("/v1/live/alerts", headers=VIEWER)
        assert live.status_code == 503 and live.json()["error"]["code"] == "NOT_READY"
    gc.collect()  # a Kafka client leaked by a failed start would warn here, inside this test, and fail it
