"""The public register map in headless Chromium (Debian's package, no browser download) against the real register
and database: legend and clustering, filters, search by id or place, the detail card with live status, the
removal/objection request, keyboard use, readable contrast and phone width. Nothing is loaded from elsewhere."""

from __future__ import annotations

import asyncio
import math
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.integration.api.support import insert_readings
from tests.integration.register.conftest import ADMIN, sensor_body
from tests.support.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    CHROMIUM_MISSING,
    CHROMIUM_PRESENT,
    PHONE,
    screenshot_path,
)

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM_PRESENT, reason=CHROMIUM_MISSING)]

# WCAG 2.1 relative luminance and contrast ratio of an element's text against its nearest opaque background.
CONTRAST_JS = """selector => {
  const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  return [...document.querySelectorAll(selector)].filter((n) => n.offsetParent && n.textContent.trim()).map((node) => {
    let back = node;
    while (back && (getComputedStyle(back).backgroundColor === "rgba(0, 0, 0, 0)")) back = back.parentElement;
    const fg = lum(rgb(getComputedStyle(node).color)), bg = lum(rgb(back ? getComputedStyle(back).backgroundColor : "rgb(255,255,255)"));
    return [node.textContent.trim().slice(0, 30), (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05)];
  });
}"""


def declare(http: httpx.Client, organisation: str, **overrides) -> str:
    body = sensor_body(organisation, **overrides)
    created = http.post("/v1/sensors", json=body)
    assert created.status_code == 201, created.text
    sensor_id = created.json()["sensor_id"]
    assert http.post(f"/v1/sensors/{sensor_id}/status", json={"status": "active"}).status_code == 200
    return sensor_id


def seed(live_register: str, organisation: str, database_url: str) -> dict[str, str]:
    """Five sensors of one organisation near the Dam: traffic reporting, traffic silent, waste with personal data,
    energy suspended, and a camera-like traffic area (polygon); plus a draft that must never show."""
    place = f"Kade {uuid.uuid4().hex[:6]}"
    with httpx.Client(base_url=live_register, headers=ADMIN, timeout=30) as http:
        ids = {
            "reporting": declare(http, organisation, location={"type": "Point", "coordinates": [4.8930, 52.3731]},
                                 location_description=f"{place}, corner of the bridge",
                                 privacy_statement_url="https://example.org/privacy/traffic",
                                 owner_contact_email="hidden-reporting@example.org",
                                 contact_role="Traffic department, sensor desk"),
            "silent": declare(http, organisation, location={"type": "Point", "coordinates": [4.8931, 52.3732]},
                              location_description="Damrak 1"),
            "personal": declare(
                http, organisation, sensor_id=f"waste-test-{uuid.uuid4().hex[:8]}", domain="waste",
                metrics=[{"name": "fillingLevel", "unit": "fraction", "min": 0, "max": 1},
                         {"name": "temperature", "unit": "°C", "min": -40, "max": 120}],
                location={"type": "Point", "coordinates": [4.8925, 52.3728]}, personal_data=True,
                privacy_statement_url="https://example.org/privacy/waste",
                legal_ground="legitimate_interests", purpose="Plan collection rounds", retention_days=30,
                location_description="Nieuwezijds Voorburgwal 2"),
            "suspended": declare(
                http, organisation, sensor_id=f"energy-test-{uuid.uuid4().hex[:8]}", domain="energy",
                metrics=[{"name": "activePower", "unit": "kW", "min": 0, "max": 5000}],
                location={"type": "Point", "coordinates": [4.9100, 52.3600]}, purpose="Balance the grid"),
            "area": declare(http, organisation, location={"type": "Polygon", "coordinates": [[
                [4.8990, 52.3700], [4.9010, 52.3700], [4.9010, 52.3712], [4.8990, 52.3712], [4.8990, 52.3700]]]},
                location_description="Rokin, whole block"),
        }
        assert http.post(f"/v1/sensors/{ids['suspended']}/status", json={"status": "suspended"}).status_code == 200
        ids["draft"] = http.post("/v1/sensors", json=sensor_body(organisation)).json()["sensor_id"]
        # The rest of the city, another owner: enough sensors around the centre for clusters to form.
        others = []
        for index in range(30):
            angle, radius = index * 2.4, 0.004 + 0.0012 * index
            domain = ("traffic", "energy", "waste")[index % 3]
            metric = {"traffic": ("intensity", "veh/h"), "energy": ("activePower", "kW"),
                      "waste": ("fillingLevel", "fraction")}[domain]
            others.append((declare(
                http, f"{organisation} Stadsbeheer", sensor_id=f"{domain}-test-{uuid.uuid4().hex[:8]}", domain=domain,
                metrics=[{"name": metric[0], "unit": metric[1], "min": 0, "max": 10_000}],
                location={"type": "Point", "coordinates": [4.8952 + radius * 1.6 * math.cos(angle),
                                                           52.3702 + radius * math.sin(angle)]},
                location_description=f"Street {index}"), domain))
    now = datetime.now(UTC)
    for sensor_id, domain in others[::2]:
        metric = {"traffic": "intensity", "energy": "activePower", "waste": "fillingLevel"}[domain]
        asyncio.run(insert_readings(database_url, sensor_id, domain, [(1, now - timedelta(seconds=20), {metric: 0.5})]))
    asyncio.run(insert_readings(database_url, ids["reporting"], "traffic",
                                [(seq, now - timedelta(seconds=30 * seq), {"intensity": 500.0}) for seq in range(4)]))
    asyncio.run(insert_readings(database_url, ids["silent"], "traffic", [(1, now - timedelta(hours=2), {"intensity": 1.0})]))
    ids["place"] = place
    return ids


def shown_ids(page) -> list[str]:
    return page.eval_on_selector_all("#sensor-list button", "nodes => nodes.map(n => n.dataset.sensorId)")


def wait_listed(page, expected: list[str]) -> None:
    """Until the list shows exactly `expected` (the search input applies after a short debounce)."""
    page.wait_for_function("ids => JSON.stringify([...document.querySelectorAll('#sensor-list button')]"
                           ".map(n => n.dataset.sensorId)) === JSON.stringify(ids)", arg=expected, timeout=5_000)


def test_residents_find_read_and_object(live_register, organisation, settings, tmp_path):
    from playwright.sync_api import sync_playwright

    ids = seed(live_register, organisation, settings.database_url)
    requests: list[str] = []
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.on("request", lambda request: requests.append(request.url))
            page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.goto(f"{live_register}/map")
            page.wait_for_selector("body[data-loaded=true]", timeout=20_000)
            assert problems == []

            # Legend, and clustering: at city zoom the five sensors sit in clusters that count them.
            legend = page.locator("aside .key").all_inner_texts()
            assert all(word in " ".join(legend) for word in ("traffic", "energy", "waste", "reporting", "silent",
                                                              "suspended", "cluster"))
            page.select_option("#f-owner", organisation)
            assert sorted(shown_ids(page)) == sorted(ids[k] for k in ("reporting", "silent", "personal", "suspended",
                                                                      "area"))
            page.evaluate("window.citystreamRegister.map.setView([52.372, 4.90], 12, {animate: false})")
            # Clustering runs in chunks after the zoom: wait for it rather than a fixed time (800 ms was not always
            # enough on a loaded machine, and the count found no cluster).
            page.wait_for_function("() => [...document.querySelectorAll('.marker-cluster')]"
                                   ".some((node) => Number(node.innerText) >= 3)", timeout=10_000)
            counts = [int(text) for text in page.locator(".marker-cluster").all_inner_texts()]
            assert counts and max(counts) >= 3

            # Filters: domain, personal data, purpose, status.
            page.select_option("#f-domain", "waste")
            assert shown_ids(page) == [ids["personal"]]
            page.select_option("#f-domain", "")
            page.select_option("#f-personal", "yes")
            assert shown_ids(page) == [ids["personal"]]
            page.select_option("#f-personal", "")
            page.select_option("#f-purpose", "Balance the grid")
            assert shown_ids(page) == [ids["suspended"]]
            page.select_option("#f-purpose", "")
            for status, key in (("reporting", "reporting"), ("silent", "silent"), ("suspended", "suspended")):
                page.select_option("#f-status", status)
                assert ids[key] in shown_ids(page) and all(
                    sensor not in shown_ids(page) for other, sensor in ids.items()
                    if other in ("reporting", "silent", "suspended") and other != key), status
            page.select_option("#f-status", "")
            assert ids["draft"] not in shown_ids(page)

            # Search by place description, then by sensor id (keyboard only from here on).
            page.locator("#search").focus()
            page.keyboard.type(ids["place"].lower())
            wait_listed(page, [ids["reporting"]])
            page.fill("#search", ids["personal"][-8:])
            wait_listed(page, [ids["personal"]])
            page.fill("#search", ids["place"])
            wait_listed(page, [ids["reporting"]])
            page.locator("#search").focus()
            tabs = 0
            while page.evaluate("document.activeElement.dataset.sensorId") is None and tabs < 10:
                page.keyboard.press("Tab")  # past the five filters to the first (only) matching sensor
                tabs += 1
            assert page.evaluate("document.activeElement.dataset.sensorId") == ids["reporting"] and tabs == 6
            page.keyboard.press("Enter")
            card = page.locator("#card")
            card.wait_for(state="visible")
            assert page.evaluate("document.activeElement.id") == "card"  # focus moves to the card
            field = {name: card.locator(f"dd[data-field={name}]").inner_text() for name in (
                "owner", "contact", "measures", "purpose", "legal_ground", "personal_data", "retention",
                "active_until", "live_status")}
            assert field["owner"] == organisation
            assert "intensity (veh/h)" in field["measures"] and "averageVehicleSpeed (km/h)" in field["measures"]
            assert field["purpose"] == "Measure traffic flow to time the traffic lights"
            assert field["legal_ground"].startswith("public task") and field["personal_data"] == "no"
            assert field["retention"] == "readings kept 365 days" and field["active_until"]
            assert field["live_status"].startswith("reporting — last reading")
            assert field["contact"] == \
                f"Traffic department, sensor desk ({organisation}), through the request form below"
            assert "Jan Contactpersoon" not in card.inner_text()  # the contact person is never public
            assert card.locator("dd[data-field=privacy_statement] a").get_attribute("href") == \
                "https://example.org/privacy/traffic"
            assert "500" not in card.inner_text()  # no reading values on the public card
            page.screenshot(path=str(screenshot_path(tmp_path, "public-map-card.png")))

            # Escape closes the card and gives focus back to the list.
            page.keyboard.press("Escape")
            assert card.is_hidden()
            assert page.evaluate("document.activeElement.dataset.sensorId") == ids["reporting"]

            # Status in the card for the others; the objection request from a card.
            for key, expected in (("silent", "silent — last reading 2 hours ago"), ("suspended", "suspended"),
                                  ("personal", "silent — no reading in the last 7 days")):
                page.evaluate("id => window.citystreamRegister.openCard(id)", ids[key])
                assert card.locator("dd[data-field=live_status]").inner_text().startswith(expected), key
            assert card.locator("dd[data-field=personal_data]").inner_text().startswith("yes")
            # No public contact role declared: the card says how to reach the owner anyway.
            assert card.locator("dd[data-field=contact]").inner_text().startswith(
                "the owner, through the request form")
            assert "fillingLevel (fraction)" in card.locator("dd[data-field=measures]").inner_text()
            card.locator("input[value=objection]").check()
            card.locator("textarea[name=reason]").fill("The bin sensor films the pavement")
            card.locator("button[type=submit]").click()
            page.wait_for_function("document.querySelector('#request-form .result').textContent.includes('received')",
                                   timeout=10_000)
            with httpx.Client(base_url=live_register, headers=ADMIN, timeout=30) as http:
                requests_listed = http.get("/v1/removal-requests", params={"status": "open"}).json()
            assert {(r["sensor_id"], r["reason"]) for r in requests_listed} >= {
                (ids["personal"], "[objection] The bin sensor films the pavement")}

            # Readable contrast (WCAG AA, 4.5:1) for the text residents read.
            page.evaluate("id => window.citystreamRegister.openCard(id)", ids["reporting"])
            ratios = page.evaluate(CONTRAST_JS, "header h1, header p, #card dt, #card dd, #sensor-list button span, "
                                                ".badge, .filters label, button[type=submit]")
            assert ratios and all(ratio >= 4.5 for _, ratio in ratios), [r for r in ratios if r[1] < 4.5]
            page.keyboard.press("Escape")
            page.fill("#search", "")
            page.select_option("#f-owner", "")
            page.evaluate("window.citystreamRegister.map.setView([52.3715, 4.8985], 14, {animate: false})")
            page.wait_for_timeout(800)
            page.screenshot(path=str(screenshot_path(tmp_path, "public-map.png")))
            assert organisation in page.content() and "hidden-reporting@example.org" not in page.content()

            # Phone width: nothing wider than the screen; a tap on a listed sensor opens its card and form.
            phone = browser.new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
            phone.on("request", lambda request: requests.append(request.url))
            phone.goto(f"{live_register}/map")
            phone.wait_for_selector("body[data-loaded=true]", timeout=20_000)
            assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            phone.screenshot(path=str(screenshot_path(tmp_path, "public-map-phone.png")))
            phone.select_option("#f-owner", organisation)
            phone.locator(f"#sensor-list button[data-sensor-id='{ids['personal']}']").tap()
            assert phone.locator("#card").is_visible()
            assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            box = phone.locator("#card button[type=submit]").bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
            phone.locator("#card").screenshot(path=str(screenshot_path(tmp_path, "public-map-phone-card.png")))
        finally:
            browser.close()
    assert all(url.startswith((live_register, "data:")) for url in requests), \
        [url for url in requests if not url.startswith(live_register)]
