"""Every route of the API declares an access policy, and the app-wide check is part of every route."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute

from services.api.app import create_app
from services.api.auth import Role, enforce_policy, route_role
from services.api.settings import ApiSettings


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(ApiSettings())


def _calls(dependant) -> set:
    found = {dependant.call}
    for child in dependant.dependencies:
        found |= _calls(child)
    return found


def test_every_route_declares_a_policy_and_is_checked(app):
    unchecked = []
    for route in app.routes:
        name = f"{sorted(getattr(route, 'methods', None) or ['WS'])} {route.path}"
        # Plain Starlette routes/mounts bypass FastAPI dependencies: none may exist.
        if not isinstance(route, (APIRoute, APIWebSocketRoute)):
            unchecked.append(f"{name}: not a FastAPI route ({type(route).__name__})")
        elif route_role(route) is None:
            unchecked.append(f"{name}: no policy")
        elif enforce_policy not in _calls(route.dependant):
            unchecked.append(f"{name}: policy not enforced")
    assert unchecked == []
    assert len(app.routes) >= 15


def test_writes_need_the_operator_role_and_reads_a_token(app):
    roles = {(method, route.path): route_role(route) for route in app.routes if isinstance(route, APIRoute)
             for method in route.methods}
    assert roles[("POST", "/v1/alerts/{alert_id}/actions")] == Role.OPERATOR
    admin_only = {path for (method, path), role in roles.items() if role == Role.ADMIN}
    assert admin_only == {"/v1/audit/operator-actions"}  # admin grants something an operator lacks
    public = {path for (method, path), role in roles.items() if role == Role.PUBLIC}
    assert public == {"/healthz", "/readyz", "/metrics", "/", "/ops/", "/ops/{asset}", "/ops/vendor/{asset}",
                      "/favicon.ico", "/openapi.json", "/docs"}
    assert all(role >= Role.VIEWER for (method, path), role in roles.items() if path.startswith("/v1/"))


async def test_a_route_without_policy_is_denied_even_to_admins():
    app = create_app(ApiSettings())

    @app.get("/forgotten")
    async def forgotten() -> dict:
        return {"leaked": True}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        response = await client.get("/forgotten", headers={"Authorization": "Bearer dev-admin"})
    assert response.status_code == 403
    assert response.json() == {"error": {"code": "NO_POLICY", "field": None,
                                         "message": "this route declares no access policy and is denied"}}


async def test_roles_are_ordered_and_tokens_checked():
    app = create_app(ApiSettings(api_tokens="v:viewer,o:operator:anna"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        assert (await client.get("/v1/alerts")).status_code == 401
        assert (await client.get("/v1/alerts", headers={"Authorization": "Bearer dev-viewer"})).status_code == 401
        forbidden = await client.post("/v1/alerts/a1/actions", json={"action": "acknowledge"},
                                      headers={"Authorization": "Bearer v"})
        assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "FORBIDDEN"
        assert (await client.get("/healthz")).status_code == 200
