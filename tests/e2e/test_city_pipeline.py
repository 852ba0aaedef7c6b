"""End to end, every service as a real process on the real Kafka and TimescaleDB, each with its own database role:

declare a bin in the register → publish through HTTP ingest → the sink stores readings and rejections →
the anomaly worker raises an overflow alert → the API lists it → an operator acknowledges it through the API →
the anomaly service applies the command → the API shows the alert acknowledged.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from services.common.roles import APP_ROLE, READER_ROLE, with_role
from services.common.settings import CommonSettings
from tests.support.processes import ServiceProcess, free_port

ADMIN_TOKEN = "e2e-admin-token-0123456789"
OPERATOR_TOKEN = "e2e-operator"


@pytest.fixture
def platform(settings: CommonSettings, tmp_path) -> Iterator[dict[str, ServiceProcess]]:
    common = {
        "CITYSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "CITYSTREAM_DATABASE_URL": settings.database_url,
        "CITYSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "CITYSTREAM_LOG_LEVEL": "INFO",
    }
    app_dsn = {"CITYSTREAM_DATABASE_URL": with_role(settings.database_url, APP_ROLE)}
    ports = {name: free_port() for name in ("register", "ingest", "sink", "anomaly", "api")}
    specs = [
        ("register", ("services.register",), app_dsn | {"CITYSTREAM_REGISTER_PORT": str(ports["register"]),
                                              "CITYSTREAM_REGISTER_ADMIN_TOKEN": ADMIN_TOKEN,
                                              "CITYSTREAM_REGISTER_RELAY_POLL_S": "0.1"}),
        ("ingest", ("services.ingest", "http"), {"CITYSTREAM_INGEST_HTTP_PORT": str(ports["ingest"])}),
        ("sink", ("services.ingest", "sink"), app_dsn | {"CITYSTREAM_INGEST_SINK_PORT": str(ports["sink"])}),
        ("anomaly", ("services.anomaly", "worker"), {"CITYSTREAM_ANOMALY_WEB_PORT": str(ports["anomaly"]),
                                                     "CITYSTREAM_ANOMALY_APP_ID": f"{settings.topic_prefix}anomaly",
                                                     "CITYSTREAM_ANOMALY_STORE": "memory://"}),
        ("api", ("services.api",), {"CITYSTREAM_API_PORT": str(ports["api"]),
                                    "CITYSTREAM_API_DATABASE_URL": with_role(settings.database_url, READER_ROLE),
                                    "CITYSTREAM_API_TOKENS": f"{OPERATOR_TOKEN}:operator:e2e-operator"}),
    ]
    services = {
        name: ServiceProcess(name, args, ports[name], common | env, tmp_path / f"{name}.log")
        for name, args, env in specs
    }
    try:
        for service in services.values():
            service.start()
        for service in services.values():
            service.wait_ready()
        yield services
    finally:
        for service in services.values():
            service.stop()


def eventually(check: Callable[[], object], timeout_s: float, what: str, logs: Callable[[], str] = lambda: ""):
    """Poll `check` until it returns something truthy; fail with `what` and the logs after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}\n{logs()}")


def declare_bin(register: ServiceProcess) -> tuple[str, str]:
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    sensor_id = f"waste-e2e-{uuid.uuid4().hex[:8]}"
    body = {
        "sensor_id": sensor_id,
        "owner_organisation": "Gemeente Amsterdam, Afval en Grondstoffen",
        "owner_contact_name": "Afvalteam",
        "owner_contact_email": "afval@example.org",
        "domain": "waste",
        "metrics": [{"name": "fillingLevel", "unit": "fraction", "min": 0, "max": 1},
                    {"name": "temperature", "unit": "°C", "min": -40, "max": 120}],
        "location": {"type": "Point", "coordinates": [4.9041, 52.3676]},
        "location_description": "Nieuwmarkt, underground container",
        "purpose": "Empty containers before they overflow",
        "legal_ground": "public_task",
        "personal_data": False,
        "retention_days": 365,
        "reporting_interval_s": 60,
        "rate_limit_per_minute": 600,
        "active_until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
    }
    with httpx.Client(base_url=register.url, headers=admin, timeout=10) as client:
        assert client.post("/v1/sensors", json=body).status_code == 201
        assert client.post(f"/v1/sensors/{sensor_id}/status", json={"status": "active"}).status_code == 200
        issued = client.post(f"/v1/sensors/{sensor_id}/credentials")
        assert issued.status_code == 201, issued.text
    return sensor_id, issued.json()["credential"]


def test_a_bin_overflowing_becomes_an_alert_an_operator_acknowledges(platform, settings):
    register, ingest, api = platform["register"], platform["ingest"], platform["api"]
    def logs() -> str:
        metrics = httpx.get(f"{platform['anomaly'].url}/metrics", timeout=5).text
        counters = [line for line in metrics.splitlines() if line.startswith("citystream_") and "_created" not in line]
        return "\n".join([*(f"--- {s.name}\n{s.log_tail(1500)}" for s in platform.values()), *counters])
    sensor_id, credential = declare_bin(register)
    auth = {"authorization": f"Bearer {credential}"}
    start = datetime.now(UTC) - timedelta(minutes=40)
    # A bin filling from 40 % to 98 % over 30 minutes: the last readings are above the overflow threshold.
    readings = [
        {"seq": n, "observed_at": (start + timedelta(minutes=n)).isoformat(),
         "metrics": {"fillingLevel": round(min(0.98, 0.40 + 0.02 * n), 3), "temperature": 12.0}}
        for n in range(30)
    ]
    with httpx.Client(base_url=ingest.url, timeout=10) as client:
        # The register change reaches the gate through Kafka; until then the sensor is unknown (404).
        first = eventually(
            lambda: (r := client.post("/v1/readings", json={"readings": readings[:1]}, headers=auth)).status_code
            == 200 and r, 20, "the gate to learn the new sensor", logs)
        assert first.json()["accepted"] == 1
        rest = client.post("/v1/readings", json={"readings": readings[1:]}, headers=auth)
        assert rest.status_code == 200, rest.text
        undeclared = client.post("/v1/readings", headers=auth, json={"readings": [
            {"seq": 100, "observed_at": datetime.now(UTC).isoformat(), "metrics": {"cargoWeight": 80.0}}]})
        assert undeclared.status_code == 422
        assert undeclared.json()["outcomes"][0]["reason"] == "UNDECLARED_METRIC"
        assert undeclared.json()["outcomes"][0]["field"] == "metrics.cargoWeight"

    async def stored() -> tuple[set[int], list[str]]:
        connection = await asyncpg.connect(settings.database_url)
        try:
            seqs = {r["seq"] for r in await connection.fetch("SELECT seq FROM readings WHERE sensor_id = $1", sensor_id)}
            reasons = [r["reason"] for r in await connection.fetch(
                "SELECT reason FROM rejections WHERE sensor_id = $1", sensor_id)]
        finally:
            await connection.close()
        return seqs, reasons

    import asyncio

    eventually(lambda: asyncio.run(stored()) == (set(range(30)), ["UNDECLARED_METRIC"]), 30,
               "the sink to store every accepted reading and the rejection", logs)

    operator = {"authorization": f"Bearer {OPERATOR_TOKEN}"}
    with httpx.Client(base_url=api.url, headers=operator, timeout=10) as client:
        def overflow_alert():
            page = client.get("/v1/alerts", params={"sensor_id": sensor_id})
            items = page.json().get("items", []) if page.status_code == 200 else []
            return next((a for a in items if a["kind"] == "overflow"), None)

        alert = eventually(overflow_alert, 60, "an overflow alert in the API", logs)
        assert alert["status"] == "open"
        explanation = alert["explanation"]
        assert explanation["detector"].startswith("waste.")
        assert explanation["observed"] >= explanation["threshold"]
        assert explanation["contributing"], "the alert names the readings that raised it"

        # The ops-centre map finds the bin by its registered location, marked as alerting.
        nearby = client.get("/v1/sensors", params={"bbox": "4.90,52.36,4.91,52.37"}).json()["items"]
        ours = next(item for item in nearby if item["sensor_id"] == sensor_id)
        assert ours["location"] == [4.9041, 52.3676]
        assert ours["status"] == "alerting"  # an open alert outranks the rejected reading
        assert any(a["alert_id"] == alert["alert_id"] for a in ours["open_alerts"])

        accepted = client.post(f"/v1/alerts/{alert['alert_id']}/actions", json={"action": "acknowledge"})
        assert accepted.status_code == 202, accepted.text
        eventually(lambda: client.get(f"/v1/alerts/{alert['alert_id']}").json()["alert"]["status"] == "acknowledged",
                   30, "the acknowledgement to come back from the anomaly service", logs)
