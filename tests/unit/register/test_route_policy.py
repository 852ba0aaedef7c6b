"""Every route of the register declares an access policy, the app-wide check is part of every route (deny by default)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from services.register.app import create_app
from services.register.policy import Access, current_principal, enforce_policy, route_access
from services.register.settings import RegisterSettings

PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/openapi.json"), ("GET", "/docs"),
          ("GET", "/public/sensors.geojson"), ("GET", "/map"), ("GET", "/map/vendor/{asset}"),
          ("POST", "/public/removal-requests"),
          ("GET", "/owner")}  # the owner page holds no data: it asks for the token, then calls owner routes
ADMIN_ONLY = {("DELETE", "/v1/sensors/{sensor_id}"), ("POST", "/v1/owner-tokens"),
              ("DELETE", "/v1/owner-tokens/{token_id}")}


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(RegisterSettings())


def _calls(dependant) -> set:
    found = {dependant.call}
    for child in dependant.dependencies:
        found |= _calls(child)
    return found


def _roles(app: FastAPI) -> dict[tuple[str, str], Access | None]:
    return {(method, route.path): route_access(route) for route in app.routes if isinstance(route, APIRoute)
            for method in route.methods}


def test_every_route_declares_a_policy_and_is_checked(app):
    unchecked = []
    for route in app.routes:
        name = f"{sorted(getattr(route, 'methods', None) or ['?'])} {route.path}"
        # Plain Starlette routes and mounts bypass FastAPI dependencies: none may exist.
        if not isinstance(route, APIRoute):
            unchecked.append(f"{name}: not a FastAPI route ({type(route).__name__})")
        elif route_access(route) is None:
            unchecked.append(f"{name}: no policy")
        elif route.dependant.dependencies[0].call is not enforce_policy:
            unchecked.append(f"{name}: policy not enforced first")
        elif route_access(route) is Access.PUBLIC and current_principal in _calls(route.dependant):
            unchecked.append(f"{name}: public, yet asks for a caller")
    assert unchecked == []
    assert len(app.routes) >= 25


def test_only_the_public_view_is_public_and_admin_routes_need_the_admin(app):
    roles = _roles(app)
    assert {key for key, level in roles.items() if level is Access.PUBLIC} == PUBLIC
    assert {key for key, level in roles.items() if level is Access.ADMIN} == ADMIN_ONLY
    assert all(level is Access.OWNER for key, level in roles.items() if key not in PUBLIC | ADMIN_ONLY)


async def test_a_route_without_policy_is_denied_even_to_the_admin():
    settings = RegisterSettings()
    app = create_app(settings)

    @app.get("/forgotten")
    async def forgotten() -> dict:
        return {"leaked": True}

    admin = {"authorization": f"Bearer {settings.register_admin_token.get_secret_value()}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://register") as client:
        response = await client.get("/forgotten", headers=admin)
    assert (response.status_code, response.json()["reason"]) == (403, "NO_POLICY")


async def test_without_a_token_every_non_public_route_answers_401_before_any_work(app):
    """No lifespan here (no pool): a 401 proves the refusal comes before the route touches the database."""
    checked = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://register") as client:
        for (method, path), level in sorted(_roles(app).items()):
            if level is Access.PUBLIC:
                continue
            checked.append((method, path))
            url = path.replace("{request_id}", "1").replace("{sensor_id}", "traffic-x-1").replace(
                "{key_id}", "sk_1").replace("{token_id}", "tok_1")
            for headers in ({}, {"authorization": "Basic abc"}, {"authorization": "Bearer "}):
                response = await client.request(method, url, json={}, headers=headers)
                assert (response.status_code, response.json()["reason"]) == (401, "UNAUTHENTICATED"), (
                    method, path, headers)
    assert len(checked) == len(_roles(app)) - len(PUBLIC) == 18
