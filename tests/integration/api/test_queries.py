"""Time-series, latest-value, sensor and alert queries over the real TimescaleDB (rows inserted directly)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from schemas.alerts import ContributingReading
from tests.integration.api.support import (
    OPERATOR, VIEWER, alert_event, evolve, insert_alert_events, insert_readings, reader_url, register_sensors, registration,
    running_api, unique_sensor,
)


async def test_series_buckets_from_raw_readings_and_rollups(settings):
    sensor = unique_sensor()
    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    rows = [(seq, start + timedelta(seconds=30 * seq), {"intensity": float(seq), "occupancy": 0.5}) for seq in range(20)]
    await insert_readings(settings.database_url, sensor, "traffic", rows)
    connection = await asyncpg.connect(settings.database_url)
    try:  # two rollup minutes, as the anomaly service would write them
        await connection.executemany(
            "INSERT INTO rollups_1m VALUES ($1, $2, 'intensity', 'traffic', $3, $4, $5, $6, $7)",
            [(start, sensor, 2, 0.0, 1.0, 0.5, 1.0), (start + timedelta(minutes=1), sensor, 2, 2.0, 3.0, 2.5, 3.0)])
    finally:
        await connection.close()
    async with running_api(settings) as (base, _), httpx.AsyncClient(base_url=base, headers=VIEWER) as client:
        params = {"metric": "intensity", "start": start.isoformat(), "end": (start + timedelta(minutes=10)).isoformat(),
                  "bucket": "5m", "agg": "avg,min,max,sum,count,last", "source": "raw"}
        raw = (await client.get(f"/v1/sensors/{sensor}/series", params=params)).json()
        assert raw["source"] == "raw" and raw["bucket_seconds"] == 300
        first, second = raw["points"]
        assert first == {"bucket_start": "2026-01-05T08:00:00Z", "avg": 4.5, "min": 0.0, "max": 9.0, "sum": 45.0,
                         "count": 10, "last": 9.0}
        assert second["count"] == 10 and second["last"] == 19.0 and second["min"] == 10.0

        rollup = (await client.get(f"/v1/sensors/{sensor}/series",
                                   params={**params, "source": "rollups", "bucket": "1h"})).json()
        assert rollup["points"] == [{"bucket_start": "2026-01-05T08:00:00Z", "avg": 1.5, "min": 0.0, "max": 3.0,
                                     "sum": 6.0, "count": 4, "last": 3.0}]

        last = (await client.get(f"/v1/sensors/{sensor}/readings", params={"limit": 3, "lookback_hours": 24 * 3650}))
        assert [reading["seq"] for reading in last.json()] == [19, 18, 17]

        bad = await client.get(f"/v1/sensors/{sensor}/series", params={**params, "bucket": "30s"})
        assert bad.status_code == 422
        assert bad.json() == {"error": {"code": "INVALID_PARAMETER", "message": "bucket must be at least 1 minute",
                                        "field": "bucket"}}
        unknown = await client.get(f"/v1/sensors/{sensor}/series", params={**params, "metric": "colour"})
        assert unknown.json()["error"]["field"] == "metric"


async def test_latest_per_domain_and_sensors_in_a_bounding_box(settings):
    inside, outside, unlocated = unique_sensor("waste"), unique_sensor("waste"), unique_sensor("waste")
    now = datetime.now(UTC)
    for sensor, level in ((inside, 0.97), (outside, 0.2), (unlocated, 0.4)):
        await insert_readings(settings.database_url, sensor, "waste",
                              [(1, now - timedelta(minutes=5), {"fillingLevel": level - 0.1}),
                               (2, now - timedelta(seconds=20), {"fillingLevel": level})])
    await register_sensors(settings, [registration(inside, "waste", (4.90, 52.37)),
                                      registration(outside, "waste", (5.50, 51.90)),
                                      registration(unlocated, "waste", None)])
    opened = alert_event(inside, domain="waste", kind="overflow", severity="critical")
    await insert_alert_events(settings.database_url, [opened])
    async with running_api(settings) as (base, _), httpx.AsyncClient(base_url=base, headers=VIEWER) as client:
        latest = (await client.get("/v1/domains/waste/latest", params={"limit": 500})).json()
        mine = {item["sensor_id"]: item for item in latest["items"] if item["sensor_id"] in (inside, outside, unlocated)}
        assert {sensor: item["metrics"]["fillingLevel"] for sensor, item in mine.items()} == {
            inside: 0.97, outside: 0.2, unlocated: 0.4}
        assert all(item["seq"] == 2 for item in mine.values())

        area = (await client.get("/v1/sensors", params={"bbox": "4.85,52.35,4.95,52.40"})).json()
        by_id = {item["sensor_id"]: item for item in area["items"]}
        assert inside in by_id and outside not in by_id and unlocated not in by_id
        assert by_id[inside]["status"] == "alerting" and by_id[inside]["latest"] == {"fillingLevel": 0.97}
        assert [alert["alert_id"] for alert in by_id[inside]["open_alerts"]] == [opened.alert_id]

        everywhere = (await client.get("/v1/sensors", params={"domain": "waste", "limit": 500})).json()
        statuses = {item["sensor_id"]: item["status"] for item in everywhere["items"]}
        assert statuses[outside] == "ok" and statuses[unlocated] == "ok"

        bad = await client.get("/v1/sensors", params={"bbox": "4.9,52"})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "bbox"


async def test_alert_list_filters_detail_history_and_contributing_readings(settings):
    sensor, other = unique_sensor(), unique_sensor("energy")
    now = datetime.now(UTC).replace(microsecond=0)
    await insert_readings(settings.database_url, sensor, "traffic",
                          [(41, now - timedelta(minutes=2), {"intensity": 1800.0}),
                           (42, now - timedelta(minutes=1), {"intensity": 1900.0})])
    contributing = [ContributingReading(seq=41, observed_at=now - timedelta(minutes=2), metric="intensity",
                                        value=1800.0),
                    ContributingReading(seq=42, observed_at=now - timedelta(minutes=1), metric="intensity",
                                        value=1900.0)]
    opened = alert_event(sensor, occurred_at=now - timedelta(seconds=50), contributing=contributing)
    acked = evolve(opened, event_id=opened.event_id + "-ack", event_type="acknowledged", status="acknowledged",
                   occurred_at=now - timedelta(seconds=10), actor="ops-anna")
    energy = alert_event(other, domain="energy", kind="energy_outage", severity="critical",
                         occurred_at=now - timedelta(seconds=30))
    await insert_alert_events(settings.database_url, [opened, acked, energy])
    async with running_api(settings) as (base, _), httpx.AsyncClient(base_url=base, headers=VIEWER) as client:
        mine = (await client.get("/v1/alerts", params={"sensor_id": sensor})).json()
        assert mine["total"] == 1 and mine["items"][0]["status"] == "acknowledged"
        assert mine["next_offset"] is None

        critical_energy = (await client.get("/v1/alerts", params={"domain": "energy", "severity": "critical",
                                                                   "status": "open", "limit": 500})).json()
        ids = {item["alert_id"] for item in critical_energy["items"]}
        assert energy.alert_id in ids and opened.alert_id not in ids

        acknowledged = (await client.get("/v1/alerts", params={"status": "acknowledged", "sensor_id": sensor})).json()
        assert [item["alert_id"] for item in acknowledged["items"]] == [opened.alert_id]
        still_open = (await client.get("/v1/alerts", params={"status": "open", "sensor_id": sensor})).json()
        assert still_open["items"] == []

        paged = (await client.get("/v1/alerts", params={"limit": 1, "since": (now - timedelta(hours=1)).isoformat()}))
        page = paged.json()
        assert len(page["items"]) == 1 and page["total"] >= 2 and page["next_offset"] == 1

        detail = (await client.get(f"/v1/alerts/{opened.alert_id}")).json()
        assert detail["alert"]["status"] == "acknowledged" and detail["alert"]["actor"] == "ops-anna"
        assert [event["event_type"] for event in detail["history"]] == ["opened", "acknowledged"]
        assert detail["alert"]["explanation"]["threshold"] == 3.0
        assert [reading["seq"] for reading in detail["contributing_readings"]] == [41, 42]

        missing = await client.get(f"/v1/alerts/no-such-{uuid.uuid4().hex}")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "ALERT_NOT_FOUND"
        bad_filter = await client.get("/v1/alerts", params={"severity": "apocalyptic"})
        assert bad_filter.status_code == 422 and bad_filter.json()["error"]["field"] == "severity"


async def test_reader_role_cannot_write(settings):
    connection = await asyncpg.connect(reader_url(settings.database_url))
    try:
        assert await connection.fetchval("SELECT count(*) >= 0 FROM alert_events")
        try:
            await connection.execute("DELETE FROM alert_events")
        except asyncpg.InsufficientPrivilegeError:
            pass
        else:
            raise AssertionError("citystream_reader could delete alert events")
    finally:
        await connection.close()


async def test_roles_errors_and_body_limit(settings):
    async with running_api(settings, api_max_body_bytes=1024) as (base, _), httpx.AsyncClient(base_url=base) as client:
        anonymous = await client.get("/v1/alerts")
        assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "AUTHENTICATION_REQUIRED"
        wrong = await client.get("/v1/alerts", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "INVALID_TOKEN"
        viewer_acts = await client.post("/v1/alerts/x/actions", json={"action": "acknowledge"}, headers=VIEWER)
        assert viewer_acts.status_code == 403 and viewer_acts.json()["error"]["code"] == "FORBIDDEN"
        huge = await client.post("/v1/alerts/x/actions", headers=OPERATOR,
                                 json={"action": "comment", "comment": "x" * 3000})
        assert huge.status_code == 413 and huge.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"

        async def chunks():
            for _ in range(4):
                yield b"{" + b" " * 500

        streamed = await client.post("/v1/alerts/x/actions", headers={**OPERATOR, "content-type": "application/json"},
                                     content=chunks())
        assert streamed.status_code == 413
        assert (await client.get("/healthz")).json()["status"] == "ok"
        metrics = (await client.get("/metrics")).text
        assert 'citystream_api_requests_total{method="GET",route="/v1/alerts",status="401"}' in metrics
        assert (await client.get("/openapi.json")).json()["paths"]["/v1/alerts"]["get"]["x-required-role"] == "viewer"


async def test_only_admins_read_the_operator_audit(settings):
    sensor = unique_sensor()
    now = datetime.now(UTC).replace(microsecond=0)
    opened = alert_event(sensor, occurred_at=now - timedelta(minutes=5))
    acked = evolve(opened, event_id=opened.event_id + "-ack", event_type="acknowledged", status="acknowledged",
                   occurred_at=now - timedelta(minutes=4), actor=f"ops-{sensor}")
    assigned = evolve(acked, event_id=opened.event_id + "-asg", event_type="assigned", assignee="crew-north",
                      occurred_at=now - timedelta(minutes=3), actor=f"lead-{sensor}")
    await insert_alert_events(settings.database_url, [opened, acked, assigned])
    async with running_api(settings) as (base, _), httpx.AsyncClient(base_url=base) as client:
        for headers in (VIEWER, OPERATOR):
            denied = await client.get("/v1/audit/operator-actions", headers=headers)
            assert denied.status_code == 403 and denied.json()["error"]["code"] == "FORBIDDEN"
        admin = {"Authorization": "Bearer t-admin"}
        trail = (await client.get("/v1/audit/operator-actions", params={"alert_id": opened.alert_id},
                                  headers=admin)).json()
        assert [(e["event_type"], e["actor"], e["assignee"]) for e in trail["items"]] == [
            ("assigned", f"lead-{sensor}", "crew-north"), ("acknowledged", f"ops-{sensor}", None)]  # newest first
        assert trail["total"] == 2  # the detector's "opened" event has no actor: not an operator action
        one = (await client.get("/v1/audit/operator-actions", params={"actor": f"ops-{sensor}"}, headers=admin)).json()
        assert [e["event_type"] for e in one["items"]] == ["acknowledged"]
        later = (await client.get("/v1/audit/operator-actions", headers=admin, params={
            "alert_id": opened.alert_id, "since": (now - timedelta(minutes=3, seconds=30)).isoformat()})).json()
        assert [e["event_type"] for e in later["items"]] == ["assigned"]
