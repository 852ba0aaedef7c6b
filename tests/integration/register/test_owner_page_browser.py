"""The owner view in headless Chromium against a running register: the token entered once (sessionStorage, header
only), the organisation's rejections with counts by reason, a reason filter, older pages; nobody else's rows."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from services.common.settings import CommonSettings
from tests.integration.register.conftest import ADMIN, sensor_body
from tests.integration.register.rejection_rows import insert_rejections
from tests.integration.register.test_public_map_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="apt-get install chromium (deploy/local/apt-packages.txt)"),
]


def test_owner_sees_why_readings_were_refused(live_register: str, settings: CommonSettings, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    org, other = f"Waterschap {uuid.uuid4().hex[:6]}", f"Other {uuid.uuid4().hex[:6]}"
    with httpx.Client(base_url=live_register, headers=ADMIN, timeout=30) as http:
        mine = http.post("/v1/sensors", json=sensor_body(org)).json()["sensor_id"]
        theirs = http.post("/v1/sensors", json=sensor_body(other)).json()["sensor_id"]
        token = http.post("/v1/owner-tokens", json={"organisation": org}).json()["token"]
    now = datetime.now(UTC)
    rows = [(mine, "OUT_OF_RANGE", now - timedelta(minutes=m)) for m in range(1, 56)]  # 55: two pages of 50
    rows += [(mine, "UNDECLARED_METRIC", now - timedelta(hours=2)), (theirs, "RATE_LIMITED", now)]
    asyncio.run(insert_rejections(settings.database_url, rows))

    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("request", lambda request: requests.append(request.url))
            sent_headers: list[str | None] = []
            page.on("request", lambda request: sent_headers.append(request.headers.get("authorization"))
                    if "/v1/" in request.url else None)
            page.goto(f"{live_register}/owner")
            page.wait_for_selector("body[data-loaded=true]")
            page.fill("#token", token)
            page.press("#token", "Enter")  # keyboard only
            page.wait_for_selector("#rows tr")
            assert page.inner_text("#total") == "56"
            counts = dict(page.eval_on_selector_all(
                "#counts li", "nodes => nodes.map(n => [n.dataset.reason, n.querySelector('b').textContent])"))
            assert counts == {"OUT_OF_RANGE": "55", "UNDECLARED_METRIC": "1"}
            assert page.locator("#rows tr").count() == 50
            assert theirs not in page.inner_text("#rows")
            page.click("#more")
            page.wait_for_function("document.querySelectorAll('#rows tr').length === 56")
            assert page.evaluate("sessionStorage.getItem('citystream-owner-token')") == token
            assert page.evaluate("localStorage.length") == 0
            assert page.locator("#token").input_value() == ""  # not left in the field

            page.select_option("#reason", "UNDECLARED_METRIC")
            page.click("#filters button[type=submit]")
            page.wait_for_function("document.querySelectorAll('#rows tr').length === 1")
            assert "UNDECLARED_METRIC" in page.inner_text("#rows")
            page.select_option("#reason", "")
            page.click("#filters button[type=submit]")
            page.wait_for_function("document.querySelectorAll('#rows tr').length === 50")
            # docs/owner-view.png was taken with CITYSTREAM_OWNER_SCREENSHOT=docs/owner-view.png
            page.screenshot(path=os.environ.get("CITYSTREAM_OWNER_SCREENSHOT", str(tmp_path / "owner-view.png")))
        finally:
            browser.close()
    assert all(url.startswith(live_register) for url in requests), "the page must not load anything external"
    assert all(token not in url for url in requests), "the token never goes into a URL"
    assert sent_headers and all(header == f"Bearer {token}" for header in sent_headers)
