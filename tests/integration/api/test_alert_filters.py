"""Every alert-list filter excludes what it should, on the shared database: each query is judged only on alerts
of sensors this test created (a unique prefix), so other tests' rows can neither satisfy nor mask an assertion."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from tests.integration.api.support import (
    VIEWER, alert_event, evolve, insert_alert_events, produce_alerts, register_sensors, registration, running_api,
)

AREA = "4.85,52.35,4.95,52.40"


async def test_each_filter_excludes_what_it_should(settings):
    prefix = f"t{uuid.uuid4().hex[:8]}"
    traffic, energy, waste = (f"{domain}-{prefix}-{n}" for n, domain in enumerate(("traffic", "energy", "waste")))
    now = datetime.now(UTC).replace(microsecond=0)
    await register_sensors(settings, [registration(traffic, "traffic", (4.90, 52.37)),  # inside AREA
                                      registration(energy, "energy", (5.50, 51.90)),
                                      registration(waste, "waste", (4.70, 52.30))])
    congestion = alert_event(traffic, severity="high", kind="congestion", occurred_at=now - timedelta(hours=3))
    outage = alert_event(energy, domain="energy", kind="energy_outage", severity="critical",
                         occurred_at=now - timedelta(minutes=30))
    outage_acked = evolve(outage, event_id=outage.event_id + "-ack", event_type="acknowledged",
                          status="acknowledged", occurred_at=now - timedelta(minutes=20), actor="ops-anna")
    overflow = alert_event(waste, domain="waste", kind="overflow", severity="medium",
                           occurred_at=now - timedelta(minutes=10))
    overflow_resolved = evolve(overflow, event_id=overflow.event_id + "-res", event_type="resolved",
                               status="resolved", occurred_at=now - timedelta(minutes=5), resolved_at=now)
    await insert_alert_events(settings.database_url, [congestion, outage, outage_acked, overflow, overflow_resolved])
    ours = {congestion.alert_id: "congestion", outage.alert_id: "outage", overflow.alert_id: "overflow"}

    async with running_api(settings) as (base, _), httpx.AsyncClient(base_url=base, headers=VIEWER) as client:
        async def names(**params) -> set[str]:
            page = (await client.get("/v1/alerts", params={"limit": 500, **params})).json()
            assert page["next_offset"] is None, "more than one page: the test could miss its own alerts"
            return {ours[item["alert_id"]] for item in page["items"] if item["alert_id"] in ours}

        assert await names() == {"congestion", "outage", "overflow"}  # all visible without a filter
        assert await names(domain="energy") == {"outage"}
        assert await names(domain="traffic,waste") == {"congestion", "overflow"}
        assert await names(severity="critical") == {"outage"}
        assert await names(status="open") == {"congestion"}
        assert await names(status="acknowledged") == {"outage"}
        assert await names(status="resolved") == {"overflow"}
        assert await names(sensor_id=waste) == {"overflow"}
        assert await names(area=AREA) == {"congestion"}
        assert await names(since=(now - timedelta(hours=1)).isoformat()) == {"outage", "overflow"}
        assert await names(until=(now - timedelta(hours=1)).isoformat()) == {"congestion"}
        window = {"since": (now - timedelta(minutes=40)).isoformat(), "until": (now - timedelta(minutes=15)).isoformat()}
        assert await names(**window) == {"outage"}
        assert await names(kind="overflow,congestion") == {"congestion", "overflow"}
        assert await names(kind="incident") == set()
        assert await names(area=AREA, status="resolved") == set()
        naive = await client.get("/v1/alerts", params={"since": "2026-01-01T00:00:00"})
        assert naive.status_code == 422 and naive.json()["error"]["field"] == "since"


async def test_status_filter_judges_the_live_state_not_the_stored_one(settings):
    """The sink lags the stream: the database says open, the hub already saw the acknowledgement."""
    sensor = f"traffic-t{uuid.uuid4().hex[:10]}"
    opened = alert_event(sensor, occurred_at=datetime.now(UTC) - timedelta(minutes=2))
    await insert_alert_events(settings.database_url, [opened])
    async with running_api(settings) as (base, app), httpx.AsyncClient(base_url=base, headers=VIEWER) as client:
        acked = evolve(opened, event_id=opened.event_id + "-ack", event_type="acknowledged", status="acknowledged",
                       occurred_at=datetime.now(UTC), actor="ops-anna")
        await produce_alerts(settings, [acked])  # on the stream only, never stored
        for _ in range(100):
            if app.state.api.hub.latest_by_alert.get(opened.alert_id) == acked:
                break
            await asyncio.sleep(0.05)
        still_open = (await client.get("/v1/alerts", params={"status": "open", "sensor_id": sensor})).json()
        assert still_open == {"items": [], "total": 0, "limit": 50, "offset": 0, "next_offset": None}
        acknowledged = (await client.get("/v1/alerts", params={"status": "acknowledged", "sensor_id": sensor})).json()
        assert [(item["alert_id"], item["status"], item["actor"]) for item in acknowledged["items"]] == [
            (opened.alert_id, "acknowledged", "ops-anna")]
        assert acknowledged["total"] == 1
        # A filter on every page of every status: items always match what was asked for.
        for status in ("open", "acknowledged", "resolved"):
            page = (await client.get("/v1/alerts", params={"status": status, "limit": 500})).json()
            assert {item["status"] for item in page["items"]} <= {status}
