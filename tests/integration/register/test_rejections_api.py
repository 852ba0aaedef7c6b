"""`GET /v1/rejections` on the register against the real database: an owner sees its own sensors' rejections and
nobody else's, the public is refused, filters, counts by reason and pagination are exact; the owner page."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from services.common.settings import CommonSettings
from tests.integration.register.conftest import ADMIN, sensor_body
from tests.integration.register.rejection_rows import insert_rejections

NOW = datetime.now(UTC).replace(microsecond=0)


async def _owner_token(client: httpx.AsyncClient, organisation: str) -> dict:
    response = await client.post("/v1/owner-tokens", headers=ADMIN, json={"organisation": organisation})
    assert response.status_code == 201, response.text
    return {"authorization": f"Bearer {response.json()['token']}"}


async def _declare(client: httpx.AsyncClient, organisation: str) -> str:
    response = await client.post("/v1/sensors", headers=ADMIN, json=sensor_body(organisation))
    assert response.status_code == 201, response.text
    return response.json()["sensor_id"]


async def _setup(client: httpx.AsyncClient, settings: CommonSettings):
    org_a, org_b = f"Org A {uuid.uuid4().hex[:6]}", f"Org B {uuid.uuid4().hex[:6]}"
    a1, a2, b1 = await _declare(client, org_a), await _declare(client, org_a), await _declare(client, org_b)
    rows = [
        (a1, "OUT_OF_RANGE", NOW - timedelta(minutes=1)), (a1, "OUT_OF_RANGE", NOW - timedelta(hours=2)),
        (a1, "UNDECLARED_METRIC", NOW - timedelta(hours=3)), (a2, "BAD_CREDENTIALS", NOW - timedelta(hours=4)),
        (a2, "OUT_OF_RANGE", NOW - timedelta(days=3)), (a1, "OUT_OF_RANGE", NOW - timedelta(days=10)),
        (b1, "OUT_OF_RANGE", NOW - timedelta(minutes=5)), (b1, "RATE_LIMITED", NOW - timedelta(hours=1)),
        (None, "MALFORMED", NOW - timedelta(minutes=2)),
    ]
    await insert_rejections(settings.database_url, rows)
    return (org_a, org_b), (a1, a2, b1), rows


async def test_an_owner_sees_its_own_sensors_rejections_and_no_one_elses(client, settings):
    (org_a, _), (a1, a2, b1), _ = await _setup(client, settings)
    owner_a = await _owner_token(client, org_a)

    page = (await client.get("/v1/rejections", headers=owner_a)).json()
    # the default range is the last 7 days: the 10-day-old one is out
    assert {item["sensor_id"] for item in page["items"]} == {a1, a2}
    assert page["total"] == 5 and len(page["items"]) == 5
    assert page["counts_by_reason"] == {"OUT_OF_RANGE": 3, "UNDECLARED_METRIC": 1, "BAD_CREDENTIALS": 1}
    times = [item["received_at"] for item in page["items"]]
    assert times == sorted(times, reverse=True)
    first = page["items"][0]
    assert first["sensor_id"] == a1 and first["reason"] == "OUT_OF_RANGE" and first["field"] == "metrics.intensity"
    assert first["payload"] == {"seq": 0, "metrics": {"intensity": -1}} and first["source"] == "http"

    refused = await client.get("/v1/rejections", headers=owner_a, params={"sensor_id": b1})
    assert refused.status_code == 403 and refused.json()["reason"] == "FORBIDDEN"
    unknown = await client.get("/v1/rejections", headers=owner_a, params={"sensor_id": "traffic-never-declared"})
    assert unknown.status_code == 404


async def test_the_admin_sees_every_rejection_and_the_public_none(client, settings):
    (_, _), (a1, _, b1), _ = await _setup(client, settings)
    page = (await client.get("/v1/rejections", headers=ADMIN, params={"sensor_id": [a1, b1]})).json()
    assert {item["sensor_id"] for item in page["items"]} == {a1, b1}
    assert page["counts_by_reason"] == {"OUT_OF_RANGE": 3, "UNDECLARED_METRIC": 1, "RATE_LIMITED": 1}
    everything = (await client.get("/v1/rejections", headers=ADMIN, params={"reason": "MALFORMED",
                                                                            "since": (NOW - timedelta(minutes=3)).isoformat()})).json()
    assert None in {item["sensor_id"] for item in everything["items"]}  # rows of no sensor: admins only

    assert (await client.get("/v1/rejections")).status_code == 401
    bogus = await client.get("/v1/rejections", headers={"authorization": "Bearer not-a-token-of-anyone"})
    assert bogus.status_code == 401


async def test_filters_counts_and_pages_are_exact(client, settings):
    (org_a, _), (_, a2, _), _ = await _setup(client, settings)
    owner_a = await _owner_token(client, org_a)

    by_reason = (await client.get("/v1/rejections", headers=owner_a,
                                  params={"reason": ["OUT_OF_RANGE", "BAD_CREDENTIALS"]})).json()
    assert by_reason["counts_by_reason"] == {"OUT_OF_RANGE": 3, "BAD_CREDENTIALS": 1}
    assert {item["reason"] for item in by_reason["items"]} == {"OUT_OF_RANGE", "BAD_CREDENTIALS"}

    one_sensor = (await client.get("/v1/rejections", headers=owner_a, params={"sensor_id": a2})).json()
    assert one_sensor["counts_by_reason"] == {"BAD_CREDENTIALS": 1, "OUT_OF_RANGE": 1}

    window = {"since": (NOW - timedelta(hours=3, minutes=30)).isoformat(),
              "until": (NOW - timedelta(minutes=30)).isoformat()}
    ranged = (await client.get("/v1/rejections", headers=owner_a, params=window)).json()
    assert ranged["counts_by_reason"] == {"OUT_OF_RANGE": 1, "UNDECLARED_METRIC": 1}

    all_time = {"since": (NOW - timedelta(days=30)).isoformat()}
    seen, cursor, pages = [], None, 0
    while True:
        params = all_time | {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/rejections", headers=owner_a, params=params)).json()
        assert page["total"] == 6 and len(page["items"]) <= 2
        seen += [item["event_id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == 6

    bad = await client.get("/v1/rejections", headers=owner_a, params={"cursor": "garbage"})
    assert bad.status_code == 422 and bad.json()["field"] == "cursor"
    backwards = await client.get("/v1/rejections", headers=owner_a,
                                 params={"since": NOW.isoformat(), "until": (NOW - timedelta(days=1)).isoformat()})
    assert backwards.status_code == 422


async def test_the_owner_page_is_served_and_keeps_the_token_out_of_urls(client):
    response = await client.get("/owner")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "sessionStorage" in html and "localStorage" not in html
    assert 'authorization: "Bearer "' in html  # the token travels in the header only
    assert "http://" not in html and "https://" not in html  # nothing loaded from elsewhere
