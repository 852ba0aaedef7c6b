"""The ops-centre page in headless Chromium against the real API, Kafka and TimescaleDB (and, for the operator
loop, the real anomaly worker): live alerts over a ticketed stream, the clustered map, the drill-down that explains
an alert, actions with a note, the register record, 10,000 sensors with 1,000 open alerts rendered and timed.
The page asks nothing of any host but the API (no basemap unless configured, no CDN)."""

from __future__ import annotations

import asyncio
import math
import re
import struct
import time
import uuid
import zlib
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from playwright.async_api import async_playwright

from schemas.alerts import AlertAction, AlertEvent, ContributingReading, Explanation
from schemas.headers import make_headers
from schemas.register import MetricDeclaration, SensorDetails, SensorRegistration
from schemas.topics import ALERT_ACTIONS, REGISTER_SENSORS, readings_topic
from services.common import jsonwire
from services.common.kafka import make_consumer, make_producer
from tests.integration.anomaly.worker import Worker, produce, reading
from tests.integration.api.support import (
    OPERATOR,
    VIEWER,
    alert_event,
    insert_alert_events,
    insert_readings,
    produce_alerts,
    register_sensors,
    registration,
    running_api,
    unique_sensor,
)
from tests.support.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    CHROMIUM_MISSING,
    CHROMIUM_PRESENT,
    PHONE,
    screenshot_path,
)

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM_PRESENT, reason=CHROMIUM_MISSING)]
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


def problems_after_load(problems: list[str]) -> list[str]:
    """Page errors and failed responses, except the tile requests the test answers itself."""
    return [problem for problem in problems if "tiles.citystream.test" not in problem]


async def wait_ready(page, problems: list[str], timeout_ms: float = 15_000) -> None:
    """Until the page has loaded its alerts and map; a timeout names what went wrong in the page."""
    try:
        await page.wait_for_selector("body[data-ready=true]", timeout=timeout_ms)
    except Exception as timeout:
        raise AssertionError(f"the ops page did not get ready: {problems}") from timeout


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
            await page.wait_for_selector("body[data-ready=true]", timeout=10_000)
            statuses = await page.evaluate(
                "ids => ids.map(id => window.citystreamOps.state.markers.get(id).options.status)",
                [roles[role] for role in ("silent", "rejected", "ok", "alerting")])
            assert statuses == ["silent", "rejected", "ok", "alerting"]
            # Clustered: fewer cluster icons and loose markers on screen than the 18 sensors, each cluster counted.
            clusters = await page.locator("#map .cluster").all_inner_texts()
            assert clusters and sum(int(text) for text in clusters) <= 18
            assert await page.locator("#map.no-basemap").count() == 1  # no tile URL configured: no basemap

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

            await page.evaluate("id => window.citystreamOps.selectSensor(id)", roles["drill"])
            await page.wait_for_selector("body[data-chart=ready]", timeout=10_000)
            assert int(await page.locator("#chart").get_attribute("data-points")) > 10
            # A second, still-open critical alert: the banner is the cue an operator cannot miss.
            await produce_alerts(settings, [alert_event(
                roles["alerting"], domain="waste", kind="fire_risk", severity="critical", detector="waste.fire_risk",
                metric="temperature", summary="Container at 71 °C with methane rising: possible fire")])
            await page.wait_for_selector("#critical-banner:not(.hidden)", timeout=10_000)
            await page.evaluate("document.getElementById('toast').classList.add('hidden')")
            await page.screenshot(path=str(screenshot_path(tmp_path, "ops-centre.png")))
            await browser.close()
        local = base.rsplit(":", 1)[0]
        assert requested and all(url.startswith(local) for url in requested), \
            [url for url in requested if not url.startswith(local)]
        # The live stream was opened with a single-use ticket; the token itself never travelled in a URL.
        assert any("/v1/live/alerts?ticket=" in url for url in requested)
        assert not any("t-operator" in url or "access_token" in url for url in requested)
    finally:
        await consumer.stop()
        await asyncio.to_thread(worker.stop)


def waste_bin(sensor_id: str, location, interval_s: float = 60.0) -> SensorRegistration:
    """A waste bin that declares cargoWeight before fillingLevel: the drill-down must not open on the first one."""
    return SensorRegistration(
        sensor_id=sensor_id, version=1, status="active", domain="waste", owner_organisation="Gemeente Amsterdam",
        metrics=(MetricDeclaration(name="cargoWeight", unit="kg", min=0, max=500),
                 MetricDeclaration(name="fillingLevel", unit="fraction", min=0, max=1)),
        rate_limit_per_minute=60, reporting_interval_s=interval_s, updated_at=datetime.now(UTC), location=location,
        details=SensorDetails(purpose="Empty bins before they overflow", legal_ground="public_task",
                              personal_data=False, location_description="Dam square, north side"))


async def seed_overflow(settings) -> tuple[str, AlertEvent, AlertEvent]:
    """A bin reporting every minute for two hours, over 90% full for the last hour; an overflow alert opened
    40 minutes ago from three readings, and a silence alert 5 minutes ago."""
    now = datetime.now(UTC).replace(microsecond=0)
    sensor = unique_sensor("waste")
    rows = []
    for seq in range(115):
        at = now - timedelta(minutes=120 - seq)
        rows.append((seq, at, {"fillingLevel": round(min(0.99, 0.45 + seq * 0.0075), 4),
                               "cargoWeight": 80.0 + seq}))
    await insert_readings(settings.database_url, sensor, "waste", rows)
    await register_sensors(settings, [waste_bin(sensor, (4.8930, 52.3731))])
    opened = now - timedelta(minutes=40)
    contributing = tuple(ContributingReading(seq=seq, observed_at=at, metric="fillingLevel", value=m["fillingLevel"])
                         for seq, at, m in rows if opened - timedelta(minutes=2) <= at <= opened)
    alert_id = f"a-{sensor}-overflow-{uuid.uuid4().hex[:6]}"
    event = AlertEvent(
        event_id=f"{alert_id}-opened", alert_id=alert_id, event_type="opened", sensor_id=sensor, domain="waste",
        kind="overflow", severity="high", status="open", opened_at=opened, occurred_at=opened,
        explanation=Explanation(detector="waste.overflow", detector_version="1.2.0", metric="fillingLevel",
                                observed=contributing[-1].value, expected=0.9, score=contributing[-1].value,
                                threshold=0.9, contributing=contributing,
                                summary=f"Bin {contributing[-1].value:.0%} full, above the 90% overflow threshold"
                                        " for 3 readings"))
    silent_at = now - timedelta(minutes=5)
    silence_id = f"a-{sensor}-silence-{uuid.uuid4().hex[:6]}"
    silence = AlertEvent(
        event_id=f"{silence_id}-opened", alert_id=silence_id, event_type="opened", sensor_id=sensor, domain="waste",
        kind="silence", severity="medium", status="open", opened_at=silent_at, occurred_at=silent_at,
        explanation=Explanation(detector="generic.silence", detector_version="1.0.0", metric="*", observed=600.0,
                                expected=60.0, score=10.0, threshold=3.0,
                                contributing=(ContributingReading(seq=114, observed_at=rows[-1][1], metric="*",
                                                                  value=0.0),),
                                summary="no reading for 600 s; the sensor usually reports every 60 s"))
    await insert_alert_events(settings.database_url, [event, silence])
    return sensor, event, silence


def tile_png() -> bytes:
    """A 1×1 PNG in the page's dark map colour: what a tile server answers, made here (no network)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\x1b\x27\x36")) + chunk(b"IEND", b""))


async def test_the_drill_down_explains_the_alert_and_takes_a_note(settings, tmp_path):
    _, alert, silence = await seed_overflow(settings)
    consumer = make_consumer(settings.kafka, None, settings.topic(ALERT_ACTIONS))
    await consumer.start()
    failed: list[str] = []
    tiles: list[str] = []
    try:
        async with running_api(settings, api_map_tile_url="https://tiles.citystream.test/{z}/{x}/{y}.png",
                               api_map_tile_attribution="© test tiles") as (base, _), \
                async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1440, "height": 1000})
            # The basemap's tile server, answered inside the browser: the page asks it for tiles by the template.
            await page.route("https://tiles.citystream.test/**", lambda route: (
                tiles.append(route.request.url), route.fulfill(body=tile_png(), content_type="image/png"))[1])
            page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.on("pageerror", lambda error: failed.append(f"page error: {error}"))
            await page.goto(f"{base}/ops/#token=t-operator")
            await wait_ready(page, failed)
            assert failed == []  # nothing on load answers 4xx/5xx (the favicon included)
            await page.wait_for_selector("#map img.leaflet-tile-loaded", timeout=10_000)
            assert tiles and all(re.fullmatch(r"https://tiles\.citystream\.test/\d+/\d+/\d+\.png", url) for url in tiles)
            assert "© test tiles" in await page.locator("#map .leaflet-control-attribution").inner_text()

            # Keyboard: from the feed's filters, Tab moves through the alert cards (and their buttons); Enter on
            # this alert's card opens its drill-down.
            await page.locator("#filter-status").focus()
            await page.keyboard.press("Tab")
            assert await page.evaluate("document.activeElement.dataset.alertId") is not None
            for _ in range(40):
                if await page.evaluate("document.activeElement.dataset.alertId") == alert.alert_id:
                    break
                await page.keyboard.press("Tab")
            assert await page.evaluate("document.activeElement.dataset.alertId") == alert.alert_id
            await page.keyboard.press("Enter")
            await page.wait_for_selector("body[data-chart=ready]", timeout=10_000)
            chart = page.locator("#chart")
            assert await chart.get_attribute("data-metric") == "fillingLevel"  # the alerting metric, not the first
            assert await page.locator("#drill-metric").input_value() == "fillingLevel"
            assert int(await chart.get_attribute("data-contributing")) == len(alert.explanation.contributing) == 3
            # Window sized to the one-minute interval: readings before (40 min) and after (15 min) the opening.
            points = await page.evaluate("window.citystreamOps.state.chart.data[0]")
            opened_s = alert.opened_at.timestamp()
            assert sum(1 for t in points if t < opened_s) >= 30 and sum(1 for t in points if t > opened_s) >= 10
            legend = await page.locator("#chart .u-legend").inner_text()
            assert "expected 0.9" in legend and "threshold 0.9" in legend and "contributing readings (3)" in legend
            facts = {await dt.inner_text(): await dd.inner_text() for dt, dd in zip(
                await page.locator("#explain-facts dt").all(), await page.locator("#explain-facts dd").all())}
            assert facts["Detector"] == "waste.overflow v1.2.0" and facts["Expected"] == "0.9"
            assert facts["Score"] == f"{alert.explanation.score} (fires at 0.9)" and facts["Threshold"] == "0.9"
            assert await page.locator("#explain-summary").inner_text() == alert.explanation.summary
            assert await page.locator("#contributing tbody tr").count() == 3

            # The register record, one click away.
            await page.locator("#register-record summary").click()
            record = await page.locator("#record-facts").inner_text()
            assert "Gemeente Amsterdam" in record and "Empty bins before they overflow" in record
            assert "fillingLevel (fraction)" in record
            await page.evaluate("document.getElementById('toast').classList.add('hidden')")
            await page.screenshot(path=str(screenshot_path(tmp_path, "ops-drill-down.png")), full_page=True)

            # Acknowledge with a note: the acknowledgement, then the note as a comment; resolve carries its note.
            await page.fill("#action-note", "crew north dispatched")
            await page.click("#ack-button")
            acknowledged = AlertAction.model_validate_json((await asyncio.wait_for(consumer.getone(), 15)).value)
            noted = AlertAction.model_validate_json((await asyncio.wait_for(consumer.getone(), 15)).value)
            assert (acknowledged.alert_id, acknowledged.action, acknowledged.actor) == (
                alert.alert_id, "acknowledge", "ops-anna")
            assert (noted.action, noted.comment) == ("comment", "crew north dispatched")
            await page.fill("#action-note", "bin emptied at 09:12")
            await page.click("#resolve-button")
            resolved = AlertAction.model_validate_json((await asyncio.wait_for(consumer.getone(), 15)).value)
            assert (resolved.action, resolved.comment) == ("resolve", "bin emptied at 09:12")

            # Fields a newer explanation carries (a band, a likelihood) are drawn and listed when present.
            richer = {**alert.model_dump(mode="json"), "alert_id": alert.alert_id}
            richer["explanation"] = {**richer["explanation"], "expected": None, "likelihood": 0.003,
                                     "band": {"lower": 0.55, "upper": 0.85}}
            await page.evaluate("""alert => { const ops = window.citystreamOps;
                ops.state.alerts.set(alert.alert_id, alert); ops.state.detail.alert = alert; }""", richer)
            await page.evaluate("window.citystreamOps.openAlertFromState()")
            await page.wait_for_selector("body[data-chart=ready]", timeout=10_000)
            legend = await page.locator("#chart .u-legend").inner_text()
            assert "expected band low 0.55" in legend and "expected band high 0.85" in legend
            assert await page.locator("#explain-facts dd[data-field=likelihood]").inner_text() == "0.003"

            # A silence alert judges the whole sensor (metric "*"): the readings of its first metric, the score
            # against the threshold on the score axis, no "expected" of 60 s drawn as a fill level.
            await page.evaluate("id => window.citystreamOps.openAlert(id)", silence.alert_id)
            await page.wait_for_function("document.body.dataset.chart === 'ready' && "
                                         "document.querySelector('#chart').dataset.metric === 'cargoWeight'")
            legend = await page.locator("#chart .u-legend").inner_text()
            assert "threshold 3 (score)" in legend and "expected" not in legend
            assert problems_after_load(failed) == []

            # Phone width: one column, nothing wider than the screen, the drill-down still readable.
            await page.set_viewport_size(PHONE)
            await page.wait_for_timeout(300)
            assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            assert (await page.locator("#chart").bounding_box())["width"] <= PHONE["width"]
            await browser.close()
    finally:
        await consumer.stop()


async def produce_registrations(settings, records: list[SensorRegistration]) -> None:
    """Many register records at once (batched, one flush), as the register's relay would publish them."""
    producer = make_producer(settings.kafka, "test-register-bulk")
    await producer.start()
    try:
        topic = settings.topic(REGISTER_SENSORS)
        for record in records:
            await producer.send(topic, jsonwire.dumps(record), key=record.sensor_id.encode(),
                                headers=make_headers(REGISTER_SENSORS, "test"))
        await producer.flush()
    finally:
        await producer.stop()


RENDER_PROBE_JS = """async () => {
  const ops = window.citystreamOps, map = ops.state.map;
  const frame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));
  const timed = async (change, event) => {
    const started = performance.now();
    const done = new Promise((resolve) => map.once(event, resolve));
    change(); await done; await frame();
    return performance.now() - started;
  };
  const zooms = [];
  for (const step of [1, 1, 1, -1, -1, -1]) zooms.push(await timed(() => map.setZoom(map.getZoom() + step,
    { animate: false }), "zoomend"));
  const pans = [];
  for (const [dx, dy] of [[300, 0], [0, 200], [-300, 0], [0, -200]]) pans.push(await timed(() => map.panBy([dx, dy],
    { animate: false }), "moveend"));
  let started = performance.now();
  await ops.refreshSensors();  // the 30-second refresh: same sensors, statuses compared, nothing re-clustered
  await frame();
  const refresh = performance.now() - started;
  started = performance.now();
  ops.renderFeedForTest();
  await frame();
  const feed = performance.now() - started;
  // Raw ceiling in the same page: 10,000 plain circles on a bare canvas, no map library.
  const canvas = document.createElement("canvas"); canvas.width = 800; canvas.height = 600;
  document.body.append(canvas);
  const ctx = canvas.getContext("2d");
  started = performance.now();
  for (let i = 0; i < 10000; i++) { ctx.beginPath(); ctx.arc((i * 37) % 800, (i * 53) % 600, 6, 0, 6.283);
    ctx.fillStyle = i % 10 ? "#2ecc71" : "#ff3b3b"; ctx.fill(); ctx.stroke(); }
  await frame();
  const raw = performance.now() - started;
  canvas.remove();
  return { zoom_ms: zooms, pan_ms: pans, feed_ms: feed, refresh_ms: refresh, raw_canvas_ms: raw,
    markers: ops.state.markers.size };
}"""


async def test_ten_thousand_sensors_and_a_thousand_alerts_render_smoothly(settings, tmp_path):
    now = datetime.now(UTC)
    domains = ("traffic", "energy", "waste")
    sensors = [registration(f"{domains[index % 3]}-load-{index:05d}-{uuid.uuid4().hex[:4]}", domains[index % 3],
                            (4.75 + 0.30 * ((index * 7919) % 10_000) / 10_000,
                             52.30 + 0.14 * ((index * 104_729) % 10_000) / 10_000))
               for index in range(10_000)]
    await produce_registrations(settings, sensors)
    alerts = [alert_event(sensor.sensor_id, domain=sensor.domain.value, kind="anomalous_value", severity="medium",
                          occurred_at=now - timedelta(seconds=index), detector="generic.robust_z",
                          metric=METRIC[sensor.domain.value], summary=f"value {index} far from its usual level")
              for index, sensor in enumerate(sensors[::10])]
    await insert_alert_events(settings.database_url, alerts)
    problems: list[str] = []
    async with running_api(settings) as (base, _), async_playwright() as playwright, \
            httpx.AsyncClient(base_url=base, headers=VIEWER, timeout=60) as client:
        for _ in range(600):  # the API's directory follows the register topic: wait for all 10,000
            if len((await client.get("/v1/ops/map")).json()["sensors"]) == 10_000:
                break
            await asyncio.sleep(0.1)
        started = time.perf_counter()
        answer = (await client.get("/v1/ops/map")).json()
        map_api_ms = (time.perf_counter() - started) * 1000
        assert sum(1 for row in answer["sensors"] if row[4] == "alerting") == 1_000
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1440, "height": 900})
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        started = time.perf_counter()
        await page.goto(f"{base}/ops/#token=t-viewer")
        await wait_ready(page, problems, timeout_ms=60_000)
        await page.wait_for_function("document.body.dataset.mapMarkers === '10000'", timeout=30_000)
        page_ready_ms = (time.perf_counter() - started) * 1000
        render_ms = int(await page.evaluate("document.body.dataset.mapRenderMs"))
        assert int(await page.evaluate("document.body.dataset.mapMarkers")) == 10_000
        assert await page.locator("#feed li").count() >= 1_000
        assert await page.locator("#map .cluster-alerting").count() >= 1  # clusters take their worst status
        assert 0 < await page.locator("#map .cluster").count() < 200  # clustered, not 10,000 dots
        probe = await page.evaluate(RENDER_PROBE_JS)
        await page.screenshot(path=str(screenshot_path(tmp_path, "ops-10k-sensors.png")))
        await browser.close()
    figures = {"sensors": 10_000, "open_alerts": 1_000, "api_ops_map_ms": round(map_api_ms),
               "page_ready_ms": round(page_ready_ms), "map_render_ms": render_ms,
               "zoom_step_max_ms": round(max(probe["zoom_ms"])), "pan_max_ms": round(max(probe["pan_ms"])),
               "feed_render_1000_ms": round(probe["feed_ms"]), "refresh_30s_ms": round(probe["refresh_ms"]), "raw_canvas_10000_circles_ms": round(probe["raw_canvas_ms"])}
    print("ops page render figures:", figures)  # recorded in docs/ops-centre.md
    assert problems == [] and probe["markers"] == 10_000
    # Smooth on a shared 2-core machine: generous bounds; the figures themselves go into the docs.
    assert render_ms < 5_000 and max(probe["zoom_ms"]) < 1_500 and max(probe["pan_ms"]) < 1_500
