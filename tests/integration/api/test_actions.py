"""Operator commands over real Kafka: assign, comment and resolve become AlertAction records keyed by the sensor
(the contract of schemas.alerts.AlertAction); acting on a resolved alert answers 409 and sends nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx

from schemas.alerts import AlertAction
from schemas.topics import ALERT_ACTIONS
from services.common.kafka import make_consumer
from tests.integration.api.support import (
    OPERATOR, alert_event, evolve, insert_alert_events, running_api, unique_sensor,
)


async def next_action(consumer) -> tuple[str, AlertAction, dict]:
    record = await asyncio.wait_for(consumer.getone(), 15)
    return record.key.decode(), AlertAction.model_validate_json(record.value), dict(record.headers)


async def test_assign_comment_and_resolve_send_commands_and_a_resolved_alert_is_refused(settings):
    sensor, done_sensor = unique_sensor("waste"), unique_sensor("energy")
    opened = alert_event(sensor, domain="waste", kind="overflow")
    finished = alert_event(done_sensor, domain="energy", kind="energy_outage")
    resolved = evolve(finished, event_id=finished.event_id + "-res", event_type="resolved", status="resolved",
                      occurred_at=datetime.now(UTC), resolved_at=datetime.now(UTC))
    await insert_alert_events(settings.database_url, [opened, finished, resolved])
    consumer = make_consumer(settings.kafka, None, settings.topic(ALERT_ACTIONS))
    await consumer.start()
    try:
        async with running_api(settings) as (base, _), httpx.AsyncClient(base_url=base, headers=OPERATOR) as client:
            url = f"/v1/alerts/{opened.alert_id}/actions"
            bodies = [{"action": "assign", "assignee": "crew-north"},
                      {"action": "comment", "comment": "Crew dispatched, ETA 20 min"},
                      {"action": "resolve", "comment": "Bin emptied"}]
            accepted = []
            for body in bodies:
                answer = await client.post(url, json=body)
                assert answer.status_code == 202, answer.text
                accepted.append(answer.json())
            for body, answer in zip(bodies, accepted, strict=True):
                key, action, headers = await next_action(consumer)
                assert key == sensor and action.sensor_id == sensor and action.alert_id == opened.alert_id
                assert (action.action, action.assignee, action.comment) == (
                    body["action"], body.get("assignee"), body.get("comment"))
                assert action.actor == "ops-anna" and action.action_id == answer["action_id"]
                assert headers["schema"] == ALERT_ACTIONS.encode() and headers["produced-by"] == b"api"
                assert headers["event-id"] == action.action_id.encode()
            assert len({answer["action_id"] for answer in accepted}) == 3

            for body in ({"action": "acknowledge"}, *bodies):
                refused = await client.post(f"/v1/alerts/{finished.alert_id}/actions", json=body)
                assert refused.status_code == 409, refused.text
                assert refused.json() == {"error": {"code": "ALERT_RESOLVED", "field": "alert_id",
                                                    "message": "the alert is already resolved"}}
            # Nothing was sent for the resolved alert: the next record on the topic is this marker command.
            marker = await client.post(url, json={"action": "comment", "comment": "marker"})
            assert marker.status_code == 202
            _, action, _ = await next_action(consumer)
            assert (action.alert_id, action.comment) == (opened.alert_id, "marker")

            missing = await client.post("/v1/alerts/no-such-alert/actions", json={"action": "acknowledge"})
            assert missing.status_code == 404 and missing.json()["error"]["code"] == "ALERT_NOT_FOUND"
            unknown_field = await client.post(url, json={"action": "comment", "comment": "x", "priority": 1})
            assert unknown_field.status_code == 422
    finally:
        await consumer.stop()
