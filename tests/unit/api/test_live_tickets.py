"""Tokens travel only in the Authorization header; the live stream takes a single-use, short-lived ticket."""

from __future__ import annotations

import time

import httpx
import pytest

from services.api.app import create_app
from services.api.settings import ApiSettings
from services.api.tickets import TicketBook

VIEWER = {"Authorization": "Bearer v"}


@pytest.fixture
def client():
    app = create_app(ApiSettings(api_tokens="v:viewer,o:operator:anna", api_live_ticket_ttl_s=60))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


def test_a_ticket_opens_once_and_expires():
    book = TicketBook(ttl_s=60)
    first, second = book.issue("viewer", "v", now_s=1000.0), book.issue("operator", "anna", now_s=1000.0)
    assert first != second and len(first) >= 40
    assert book.redeem(first, now_s=1059.9).name == "v"
    assert book.redeem(first, now_s=1059.9) is None  # single use
    assert book.redeem(second, now_s=1060.0) is None  # expired at issue + ttl
    assert book.redeem("made-up", now_s=1000.0) is None
    book.issue("viewer", "v", now_s=2000.0)
    book.issue("viewer", "v", now_s=2100.0)  # issuing purges the expired one
    assert len(book) == 1


def test_outstanding_tickets_are_bounded():
    book = TicketBook(ttl_s=60, max_outstanding=3)
    oldest = book.issue("viewer", "v", now_s=0.0)
    for _ in range(3):
        book.issue("viewer", "v", now_s=1.0)
    assert len(book) == 3 and book.redeem(oldest, now_s=2.0) is None


@pytest.mark.parametrize("name", ["access_token", "token", "api_key"])
async def test_a_token_in_the_query_string_is_refused_even_when_valid(client, name):
    async with client:
        for path in ("/v1/alerts", "/v1/live/alerts", "/v1/me"):
            response = await client.get(path, params={name: "v"})
            assert response.status_code == 401, path
            assert response.json()["error"] == {
                "code": "TOKEN_IN_QUERY", "field": name, "message": "tokens are accepted only in the Authorization "
                "header; the live stream takes a ticket from POST /v1/live/tickets"}
        # Even beside a valid header: the URL must not carry it (it would be logged).
        assert (await client.get("/v1/me", params={name: "v"}, headers=VIEWER)).status_code == 401


async def test_the_stream_accepts_a_ticket_once(client):
    async with client:
        issued = await client.post("/v1/live/tickets", headers=VIEWER)
        assert issued.status_code == 201 and issued.json()["expires_in_s"] == 60
        ticket = issued.json()["ticket"]
        # Authenticated: without the lifespan the hub is not running, so the route itself answers 503.
        first = await client.get("/v1/live/alerts", params={"ticket": ticket})
        assert first.status_code == 503 and first.json()["error"]["code"] == "NOT_READY"
        again = await client.get("/v1/live/alerts", params={"ticket": ticket})
        assert again.status_code == 401 and again.json()["error"]["code"] == "INVALID_TICKET"
        forged = await client.get("/v1/live/alerts", params={"ticket": "x" * 43})
        assert forged.status_code == 401 and forged.json()["error"]["field"] == "ticket"


async def test_a_ticket_opens_nothing_but_the_live_stream(client):
    async with client:
        assert (await client.post("/v1/live/tickets")).status_code == 401  # anonymous callers get none
        operator_ticket = (await client.post("/v1/live/tickets", headers={"Authorization": "Bearer o"})).json()
        for method, path in (("GET", "/v1/alerts"), ("GET", "/v1/me"), ("POST", "/v1/alerts/a1/actions"),
                             ("POST", "/v1/live/tickets")):
            response = await client.request(method, path, params={"ticket": operator_ticket["ticket"]},
                                            json={"action": "acknowledge"})
            assert response.status_code == 401, (method, path)
            assert response.json()["error"]["code"] == "AUTHENTICATION_REQUIRED"
        # Those refusals did not spend it: it still opens the stream, once.
        assert (await client.get("/v1/live/alerts", params={"ticket": operator_ticket["ticket"]})).status_code == 503


async def test_an_expired_ticket_is_refused_by_the_app():
    app = create_app(ApiSettings(api_tokens="v:viewer", api_live_ticket_ttl_s=60))
    secret = app.state.tickets.issue("viewer", "v", now_s=time.monotonic() - 61)  # issued a minute ago
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        response = await client.get("/v1/live/alerts", params={"ticket": secret})
    assert response.status_code == 401 and response.json()["error"]["code"] == "INVALID_TICKET"
