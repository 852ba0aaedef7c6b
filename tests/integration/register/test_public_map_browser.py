"""The public map in headless Chromium (Debian's package, no browser download): declared sensors are drawn."""

from __future__ import annotations

import shutil

import httpx
import pytest

from tests.integration.register.conftest import ADMIN, sensor_body

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="apt-get install chromium (deploy/local/apt-packages.txt)"),
]


def test_map_page_shows_the_declared_sensors(live_register, organisation):
    from playwright.sync_api import sync_playwright

    declared = []
    with httpx.Client(base_url=live_register, headers=ADMIN, timeout=30) as http:
        for index, (lon, lat) in enumerate([(5.1214, 52.0907), (5.1302, 52.0851), (5.1105, 52.0978)]):
            body = sensor_body(organisation, location={"type": "Point", "coordinates": [lon, lat]},
                               owner_contact_email=f"hidden{index}@example.org")
            sensor_id = http.post("/v1/sensors", json=body).json()["sensor_id"]
            assert http.post(f"/v1/sensors/{sensor_id}/status", json={"status": "active"}).status_code == 200
            declared.append(sensor_id)
        draft = http.post("/v1/sensors", json=sensor_body(organisation)).json()["sensor_id"]

    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.on("request", lambda request: requests.append(request.url))
            page.goto(f"{live_register}/map")
            page.wait_for_selector("body[data-loaded=true]", timeout=20_000)
            drawn = page.eval_on_selector_all("svg circle.sensor", "nodes => nodes.map(n => n.dataset.sensorId)")
            listed = page.eval_on_selector_all("#sensor-list li", "nodes => nodes.map(n => n.dataset.sensorId)")
            assert set(declared) <= set(drawn) and set(declared) <= set(listed)
            assert draft not in drawn and draft not in listed

            # dispatch, not click: sensors of other tests in the shared database may sit on the same spot
            page.dispatch_event(f"svg circle[data-sensor-id='{declared[0]}']", "click")
            popup = page.locator("#popup")
            assert popup.is_visible()
            text = popup.inner_text()
            assert declared[0] in text and organisation in text and "public_task" in text
            assert "hidden0@example.org" not in page.content()
        finally:
            browser.close()
    assert all(url.startswith(live_register) for url in requests), "the map must not load anything external"
