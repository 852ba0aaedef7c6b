"""The ops-centre page in headless Chromium against the real platform loop: a Kafka alert shows up live within 2 s;
an alert the real anomaly worker opened from a reading is acknowledged and then resolved from the page, the worker
(the alert owner) applies each command, and the API and the page show the new state. The page asks nothing of any
host but the API (no internet map tiles)."""

from __future__ import annotations

import asyncio
import math
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from playwright.async_api import async_playwright

from schemas.alerts import AlertAction
from schemas.topics import ALERT_ACTIONS, readings_topic
from services.common.kafka import make_consumer
from tests.integration.anomaly.worker import Worker, produce, reading
from tests.integration.api.support import (
    OPERATOR, alert_event, insert_alert_events, insert_readings, produce_alerts, register_sensors, registration,
    running_api, unique_sensor,
)

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
METRIC = {"traffic": "intensity", "energy": "activePower", "waste": "fillingLevel"}


async def seed_city(settings) -> dict[str, str]:
    """A small city: sensors around Amsterdam with readings; one silent, one refused, one already alerting."""
    now = datetime.now(UTC)
    sensors, roles = [], {}
    for index in range(18):
        domain = ("traffic", "energy", "waste")[index % 3]
        sensor = unique_sensor(domain)
        angle = index * 2.4
        sensors.append(registration(sensor, domain, (4.895 + 0.05 * math.cos(angle) * (0.3 + index / 18),
                                                     52.370 + 0.03 * math.sin(angle) * (0.3 + index / 18))))
        minutes = 360 if index == 0 else 10
        rows = [(seq, now - timedelta(minutes=minutes - seq * (5 if index == 0 else 1)),
                 {METRIC[domain]: 600 + 300 * math.sin(seq / 6) + (400 if seq > 60 and index == 0 else 0)})
                for seq in range(72 if index == 0 else 9)]
        if index == 4:  # silent: last heard of an hour ago
            rows = [(1, now - timedelta(hours=1), {METRIC[domain]: 50.0})]
        await insert_readings(settings.database_url, sensor, domain, rows)
        sensors_roles = {0: "drill", 2: "bin", 3: "ok", 4: "silent", 5: "rejected", 8: "alerting"}
        if index in sensors_roles:
            roles[sensors_roles[index]] = sensor
    await register_sensors(settings, sensors)
    connection = await asyncpg.connect(settings.database_url)
    try:
        await connection.execute(
            "INSERT INTO rejections VALUES ($1, $2, $3, 7, 'OUT_OF_RANGE', 'fillingLevel 3.2 above max 1.0',"
            " 'metrics.fillingLevel', 'http', '{}'::jsonb)", now - timedelta(minutes=2), uuid.uuid4(), roles["rejected"])
    finally:
        await connection.close()
    assert roles["alerting"].startswith("waste-")
    await insert_alert_events(settings.database_url, [
        alert_event(roles["alerting"], domain="waste", kind="overflow", severity="medium",
                    occurred_at=now - timedelta(minutes=20), detector="waste.overflow", metric="fillingLevel",
                    summary="Bin 96% full, above the 90% overflow threshold for 3 readings"),
        alert_event(roles["drill"], severity="high", occurred_at=now - timedelta(minutes=45))])
    return roles


async def feed_order(page) -> list[str]:
    return await page.locator("#feed li").evaluate_all("cards => cards.map(card => card.dataset.alertId)")


async def test_alert_appears_live_and_is_acted_on_from_the_page(settings, tmp_path, anomaly_app_id):
    roles = await seed_city(settings)
    # The alert owner: the real anomaly worker, applying the page's commands (about 10 s to start).
    worker = Worker(settings.kafka, settings.topic_prefix, anomaly_app_id, tmp_path / "anomaly.log")
    await asyncio.to_thread(worker.start)
    consumer = make_consumer(settings.kafka, None, settings.topic(ALERT_ACTIONS))
    await consumer.start()
    requested: list[str] = []
    try:
        async with running_api(settings) as (base, _), async_playwright() as playwright, \
                httpx.AsyncClient(base_url=base, headers=OPERATOR) as client:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1440, "height": 900})
            page.on("request", lambda request: requested.append(request.url))
            await page.goto(f"{base}/ops/#token=t-operator")
            await page.wait_for_selector("body[data-stream=live]", timeout=10_000)
            await page.wait_for_selector(f"circle[data-sensor-id='{roles['silent']}'].silent", timeout=10_000)
            classes = {role: await page.locator(f"circle[data-sensor-id='{roles[role]}']").get_attribute("class")
                       for role in ("rejected", "ok", "alerting")}
            assert classes == {"rejected": "rejected", "ok": "ok", "alerting": "alerting"}
            assert await page.locator("#map .graticule text").count() >= 4  # lat/lon labels, no tiles needed
            assert await page.locator("#map .extent").count() == 1

            incident = alert_event(roles["drill"], severity="critical", kind="incident", detector="traffic.incident",
                                   summary="intensity collapsed to 40 from a recent flow of 780")
            await produce_alerts(settings, [incident])
            card = page.locator(f"li[data-alert-id='{incident.alert_id}']")
            await card.wait_for(timeout=2_000)  # live: on the page within 2 s of reaching Kafka
            assert "critical" in await card.get_attribute("class")
            assert await page.locator("#critical-banner").is_visible()

            # A reading over the overflow threshold: the worker opens the alert, the page shows it, newest first.
            bin_sensor = roles["bin"]
            await produce(settings.kafka, settings.topic(readings_topic("waste")), [(bin_sensor, reading(
                bin_sensor, 100, datetime.now(UTC).timestamp(), "waste", fillingLevel=0.99))])
            overflow = page.locator(f"#feed li[data-sensor-id='{bin_sensor}'][data-status=open]")
            await overflow.wait_for(timeout=30_000)
            alert_id = await overflow.get_attribute("data-alert-id")
            listed = (await client.get("/v1/alerts", params={"status": "open,acknowledged", "limit": 500})).json()
            occurred = {item["alert_id"]: item["occurred_at"] for item in listed["items"]}
            shown = await feed_order(page)
            assert alert_id in shown and incident.alert_id in shown
            assert [occurred[i] for i in shown if i in occurred] == sorted(
                (occurred[i] for i in shown if i in occurred), reverse=True)

            await overflow.locator("button[data-action=acknowledge]").click()
            action = AlertAction.model_validate_json((await asyncio.wait_for(consumer.getone(), 15)).value)
            assert (action.alert_id, action.action, action.actor) == (alert_id, "acknowledge", "ops-anna")
            await page.wait_for_selector(f"li[data-alert-id='{alert_id}'][data-status=acknowledged]", timeout=15_000)
            detail = (await client.get(f"/v1/alerts/{alert_id}")).json()
            assert detail["alert"]["status"] == "acknowledged" and detail["alert"]["actor"] == "ops-anna"

            await page.locator(f"li[data-alert-id='{alert_id}'] button[data-action=resolve]").click()
            action = AlertAction.model_validate_json((await asyncio.wait_for(consumer.getone(), 15)).value)
            assert (action.alert_id, action.action) == (alert_id, "resolve")
            for _ in range(150):  # applied by the worker, seen by the API's hub
                detail = (await client.get(f"/v1/alerts/{alert_id}")).json()
                if detail["alert"]["status"] == "resolved":
                    break
                await asyncio.sleep(0.1)
            assert detail["alert"]["status"] == "resolved" and detail["alert"]["actor"] == "ops-anna"
            assert [event["event_type"] for event in detail["history"]] == ["opened", "acknowledged", "resolved"]
            await page.wait_for_selector(f"li[data-alert-id='{alert_id}']", state="detached", timeout=10_000)

            await page.click(f"circle[data-sensor-id='{roles['drill']}']")
            await page.wait_for_selector("#chart path.series", timeout=10_000)
            assert await page.locator("#chart line.mark").count() >= 1
            # A second, still-open critical alert: the banner is the cue an operator cannot miss.
            await produce_alerts(settings, [alert_event(
                roles["alerting"], domain="waste", kind="fire_risk", severity="critical", detector="waste.fire_risk",
                metric="temperature", summary="Container at 71 °C with methane rising: possible fire")])
            await page.wait_for_selector("#critical-banner:not(.hidden)", timeout=10_000)
            await page.evaluate("document.getElementById('toast').classList.add('hidden')")
            shot = Path(os.environ.get("CITYSTREAM_OPS_SCREENSHOT", tmp_path / "ops-centre.png"))
            await page.screenshot(path=str(shot))
            await browser.close()
        local = base.rsplit(":", 1)[0]
        assert requested and all(url.startswith(local) for url in requested), \
            [url for url in requested if not url.startswith(local)]
    finally:
        await consumer.stop()
        await asyncio.to_thread(worker.stop)
