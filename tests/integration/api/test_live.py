"""Live alert stream over real Kafka: SSE with Last-Event-ID resume (nothing missed), WebSocket, operator commands."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import orjson
import pytest
import websockets

from schemas.alerts import AlertAction
from schemas.topics import ALERT_ACTIONS
from services.api.routes import live
from services.common.kafka import make_consumer
from tests.integration.api.support import (
    OPERATOR, VIEWER, alert_event, evolve, produce_alerts, register_sensors, registration, running_api,
    unique_sensor,
)


async def read_sse(response: httpx.Response, wanted: int, timeout_s: float = 15.0,
                   partial: bool = False) -> list[tuple[str, dict | None]]:
    """Collect (id, alert) pairs until `wanted` alerts arrived; position frames give (id, None).
    With `partial`, a timeout returns what arrived instead of failing."""
    frames: list[tuple[str, dict | None]] = []
    event_id, kind = None, None

    async def collect():
        nonlocal event_id, kind
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                frames.append((event_id, orjson.loads(line[6:]) if kind == "alert" else None))
                if sum(1 for _, alert in frames if alert) >= wanted:
                    return

    try:
        await asyncio.wait_for(collect(), timeout_s)
    except TimeoutError:
        if not partial:
            raise
    return frames


async def test_sse_resume_with_last_event_id_misses_nothing(settings):
    sensor = unique_sensor()
    first = [alert_event(sensor, severity="high") for _ in range(3)]
    later = [alert_event(sensor, severity="critical") for _ in range(4)]
    async with running_api(settings) as (base, _), httpx.AsyncClient(base_url=base, headers=VIEWER,
                                                                       timeout=20) as client:
        async with client.stream("GET", "/v1/live/alerts") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            await produce_alerts(settings, first)
            frames = await read_sse(response, 3)
        seen = [alert["alert_id"] for _, alert in frames if alert]
        assert seen == [event.alert_id for event in first]
        last_id = [event_id for event_id, alert in frames if alert][-1]

        # Disconnected: these are produced while the client is away.
        await produce_alerts(settings, later)
        async with client.stream("GET", "/v1/live/alerts", headers={"Last-Event-ID": last_id}) as response:
            frames = await read_sse(response, 4)
        assert [alert["alert_id"] for _, alert in frames if alert] == [event.alert_id for event in later]

        # A filter applies to replay too: only critical alerts of this domain.
        async with client.stream("GET", "/v1/live/alerts", params={"severity": "critical", "domain": "traffic"},
                                 headers={"Last-Event-ID": "0.0.0.0"}) as response:
            frames = await read_sse(response, 4)
        replayed = [alert for _, alert in frames if alert]
        assert {alert["severity"] for alert in replayed} == {"critical"}
        assert [alert["alert_id"] for alert in replayed] == [event.alert_id for event in later]

        bad = await client.get("/v1/live/alerts", headers={"Last-Event-ID": "garbage"})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "Last-Event-ID"


async def test_resume_older_than_the_buffer_reads_from_kafka(settings):
    sensor = unique_sensor()
    events = [alert_event(sensor) for _ in range(6)]
    await produce_alerts(settings, events)
    # A buffer of 100 events that starts in the future: everything before it must come from Kafka itself.
    async with running_api(settings, api_live_window_s=0.001) as (base, app):
        hub = app.state.api.hub
        assert all(start >= 0 for start in hub.start) and sum(hub.start) == len(events)
        async with httpx.AsyncClient(base_url=base, headers=VIEWER, timeout=20) as client:
            async with client.stream("GET", "/v1/live/alerts", params={"resume": "0.0.0.0"}) as response:
                frames = await read_sse(response, 6)
    got = sorted(alert["alert_id"] for _, alert in frames if alert)
    assert got == sorted(event.alert_id for event in events)


async def test_websocket_stream_filters_by_area(settings):
    inside, outside = unique_sensor("waste"), unique_sensor("waste")
    await register_sensors(settings, [registration(inside, "waste", (4.90, 52.37)),
                                      registration(outside, "waste", (5.50, 51.90))])
    async with running_api(settings) as (base, _), httpx.AsyncClient(base_url=base, headers=VIEWER) as client:
        # A browser's way in: a single-use ticket obtained with the bearer header (no token in the URL).
        ticket = (await client.post("/v1/live/tickets")).json()["ticket"]
        url = base.replace("http", "ws") + f"/v1/live/alerts/ws?ticket={ticket}&area=4.85,52.35,4.95,52.40"
        async with websockets.connect(url) as socket:
            hello = orjson.loads(await asyncio.wait_for(socket.recv(), 10))
            assert hello["type"] == "position"
            await produce_alerts(settings, [alert_event(outside, domain="waste", kind="overflow"),
                                            alert_event(inside, domain="waste", kind="overflow")])
            while True:
                message = orjson.loads(await asyncio.wait_for(socket.recv(), 10))
                if message["type"] == "alert":
                    break
            assert message["event"]["sensor_id"] == inside
        try:
            async with websockets.connect(base.replace("http", "ws") + "/v1/live/alerts/ws") as socket:
                await socket.recv()
        except websockets.exceptions.WebSocketException as refused:
            assert "403" in str(refused) or "1008" in str(refused)
        else:
            raise AssertionError("an anonymous WebSocket was accepted")
        # The spent ticket, and a token in the URL, are refused the same way.
        for refused_url in (url, base.replace("http", "ws") + "/v1/live/alerts/ws?access_token=t-viewer"):
            with pytest.raises(websockets.exceptions.WebSocketException):
                async with websockets.connect(refused_url) as socket:
                    await asyncio.wait_for(socket.recv(), 10)


async def test_sse_with_a_ticket_streams_once(settings):
    sensor = unique_sensor()
    async with running_api(settings) as (base, _), httpx.AsyncClient(base_url=base, timeout=20) as anonymous:
        ticket = (await anonymous.post("/v1/live/tickets", headers=VIEWER)).json()["ticket"]
        async with anonymous.stream("GET", "/v1/live/alerts", params={"ticket": ticket}) as response:
            assert response.status_code == 200
            event = alert_event(sensor)
            await produce_alerts(settings, [event])
            frames = await read_sse(response, 1)
        assert [alert["alert_id"] for _, alert in frames if alert] == [event.alert_id]
        again = await anonymous.get("/v1/live/alerts", params={"ticket": ticket})
        assert again.status_code == 401 and again.json()["error"]["code"] == "INVALID_TICKET"
        in_url = await anonymous.get("/v1/live/alerts", params={"access_token": "t-viewer"})
        assert in_url.status_code == 401 and in_url.json()["error"]["code"] == "TOKEN_IN_QUERY"


async def test_acknowledge_sends_a_command_keyed_by_sensor(settings):
    sensor = unique_sensor()
    opened = alert_event(sensor)
    consumer = make_consumer(settings.kafka, None, settings.topic(ALERT_ACTIONS))
    await consumer.start()
    try:
        async with running_api(settings) as (base, app), httpx.AsyncClient(base_url=base, headers=OPERATOR) as client:
            await produce_alerts(settings, [opened])
            for _ in range(100):  # the hub knows the alert before the sink stores it
                if opened.alert_id in app.state.api.hub.latest_by_alert:
                    break
                await asyncio.sleep(0.05)
            accepted = await client.post(f"/v1/alerts/{opened.alert_id}/actions", json={"action": "acknowledge"})
            assert accepted.status_code == 202, accepted.text
            assert accepted.json()["actor"] == "ops-anna"
            assign = await client.post(f"/v1/alerts/{opened.alert_id}/actions", json={"action": "assign"})
            assert assign.status_code == 422
            record = await asyncio.wait_for(consumer.getone(), 15)
            assert record.key.decode() == sensor
            action = AlertAction.model_validate_json(record.value)
            assert (action.alert_id, action.action, action.actor) == (opened.alert_id, "acknowledge", "ops-anna")
            assert dict(record.headers)["schema"] == ALERT_ACTIONS.encode()

            # The owner applies it; the API shows the new state as soon as the event is on the stream.
            await produce_alerts(settings, [evolve(opened, event_id=opened.event_id + "-ack", status="acknowledged",
                                                   event_type="acknowledged", actor="ops-anna",
                                                   occurred_at=datetime.now(UTC))])
            for _ in range(100):
                detail = (await client.get(f"/v1/alerts/{opened.alert_id}")).json()
                if detail["alert"]["status"] == "acknowledged":
                    break
                await asyncio.sleep(0.05)
            assert detail["alert"]["status"] == "acknowledged"
            assert [event["event_type"] for event in detail["history"]][-1] == "acknowledged"
    finally:
        await consumer.stop()


async def test_reconnecting_right_after_the_first_frame_misses_nothing_while_events_flow(settings, monkeypatch):
    """Alerts flow continuously; a client takes the first frames, drops, and reconnects with the first frame's id
    as Last-Event-ID. Everything its first connection delivered after that id must come again."""
    real_stream = live.alert_stream

    def slow_to_start(*args):
        """Widen the window between subscribing and the first frame (a busy server), so events arrive in it."""
        stream = real_stream(*args)

        async def delayed():
            try:
                await asyncio.sleep(0.3)
                async for item in stream:
                    yield item
            finally:
                await stream.aclose()

        return delayed()

    monkeypatch.setattr(live, "alert_stream", slow_to_start)
    sensor = unique_sensor()
    events = [alert_event(sensor) for _ in range(60)]
    order = {event.alert_id: index for index, event in enumerate(events)}
    async with running_api(settings) as (base, _), httpx.AsyncClient(base_url=base, headers=VIEWER,
                                                                       timeout=20) as client:
        async def flow():
            for index in range(0, len(events), 3):
                await produce_alerts(settings, events[index:index + 3])
                await asyncio.sleep(0.15)  # ~4 s of flow: several connect/reconnect rounds race it

        producing = asyncio.create_task(flow())
        rounds = 0
        while not producing.done():
            async with client.stream("GET", "/v1/live/alerts") as response:
                frames = await read_sse(response, 3, timeout_s=1.0, partial=True)
            first_id, first_alert = frames[0]
            assert first_alert is None  # the starting position comes first
            seen_after_first = [alert["alert_id"] for _, alert in frames if alert]
            async with client.stream("GET", "/v1/live/alerts", headers={"Last-Event-ID": first_id}) as response:
                again = await read_sse(response, len(seen_after_first))
            replayed = [alert["alert_id"] for _, alert in again if alert]
            assert replayed[:len(seen_after_first)] == seen_after_first
            assert [order[i] for i in replayed] == sorted(order[i] for i in replayed)  # one partition: in order
            rounds += int(bool(seen_after_first))
        await producing
        assert rounds >= 2, "the flow ended before the reconnects could race it"
        # And from the very start of this test's topic: all 60, once each, in order.
        async with client.stream("GET", "/v1/live/alerts", headers={"Last-Event-ID": "0.0.0.0"}) as response:
            everything = await read_sse(response, len(events))
        assert [alert["alert_id"] for _, alert in everything if alert] == [event.alert_id for event in events]


async def test_websocket_resume_delivers_what_was_missed(settings):
    sensor = unique_sensor()
    first = [alert_event(sensor, severity="high") for _ in range(2)]
    later = [alert_event(sensor, severity="critical") for _ in range(3)]
    async with running_api(settings) as (base, _):
        url = base.replace("http", "ws") + "/v1/live/alerts/ws?domain=traffic"

        async def alerts(socket, wanted: int) -> list[dict]:
            got = []
            while len(got) < wanted:
                message = orjson.loads(await asyncio.wait_for(socket.recv(), 10))
                if message["type"] == "alert":
                    got.append(message)
            return got

        async with websockets.connect(url, additional_headers=VIEWER) as socket:
            assert orjson.loads(await asyncio.wait_for(socket.recv(), 10))["type"] == "position"
            await produce_alerts(settings, first)
            seen = await alerts(socket, 2)
        assert [message["event"]["alert_id"] for message in seen] == [event.alert_id for event in first]
        await produce_alerts(settings, later)  # while no socket is open
        async with websockets.connect(f"{url}&resume={seen[-1]['id']}", additional_headers=VIEWER) as socket:
            resumed = await alerts(socket, 3)
        assert [message["event"]["alert_id"] for message in resumed] == [event.alert_id for event in later]
        try:  # refused before the handshake completes (HTTP 403) or closed with 1008 (policy), never streamed
            async with websockets.connect(f"{url}&resume=garbage", additional_headers=VIEWER) as socket:
                await asyncio.wait_for(socket.recv(), 10)
        except websockets.exceptions.InvalidStatus as refused:
            assert refused.response.status_code == 403
        except websockets.exceptions.ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 1008
        else:
            raise AssertionError("a garbage resume id was accepted")
