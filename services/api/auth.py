"""Roles and route policies: every route declares who may call it; a route without a policy answers 403."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import IntEnum

from fastapi import Depends
from starlette.exceptions import WebSocketException
from starlette.requests import HTTPConnection

from services.api.errors import ApiError

POLICY_KEY = "x-required-role"


class Role(IntEnum):
    """Ordered: a higher role may do everything a lower one may."""

    PUBLIC = 0
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3


@dataclass(frozen=True)
class Principal:
    role: Role
    name: str


ANONYMOUS = Principal(Role.PUBLIC, "anonymous")


def policy(role: Role) -> dict:
    """`openapi_extra` for a route: its required role, visible in the OpenAPI document too."""
    return {POLICY_KEY: role.name.lower()}


def websocket_policy(role: Role):
    """Decorator for WebSocket endpoints, which have no `openapi_extra`: the policy rides on the function."""
    def mark(endpoint):
        endpoint.required_role = role
        return endpoint
    return mark


def route_role(route) -> Role | None:
    """The role a route requires, or None when it declares no policy."""
    name = (getattr(route, "openapi_extra", None) or {}).get(POLICY_KEY)
    if name:
        return Role[name.upper()]
    return getattr(getattr(route, "endpoint", None), "required_role", None)


def _bearer(connection: HTTPConnection) -> str | None:
    header = connection.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    # EventSource and WebSocket clients in browsers cannot set headers; they pass the token as a query parameter.
    return connection.query_params.get("access_token")


def authenticate(connection: HTTPConnection) -> Principal:
    token = _bearer(connection)
    if not token:
        return ANONYMOUS
    for known, (role, name) in connection.app.state.tokens.items():
        if hmac.compare_digest(known.encode(), token.encode()):
            return Principal(Role[role.upper()], name)
    raise ApiError(401, "INVALID_TOKEN", "the bearer token is not known", field="authorization")


async def enforce_policy(connection: HTTPConnection) -> Principal:
    """App-wide dependency: deny by default, then compare the caller's role with the route's."""
    if connection.scope["type"] == "websocket":
        try:
            return _check(connection)
        except ApiError as problem:
            raise WebSocketException(code=1008, reason=problem.code) from problem
    return _check(connection)


def _check(connection: HTTPConnection) -> Principal:
    required = route_role(connection.scope.get("route"))
    if required is None:
        raise ApiError(403, "NO_POLICY", "this route declares no access policy and is denied")
    principal = authenticate(connection)
    if principal.role < required:
        if principal is ANONYMOUS:
            raise ApiError(401, "AUTHENTICATION_REQUIRED", f"this route needs the {required.name.lower()} role",
                           field="authorization")
        raise ApiError(403, "FORBIDDEN", f"this route needs the {required.name.lower()} role")
    connection.state.principal = principal
    return principal


# Every router is built with these dependencies, so no route escapes the policy check.
SECURED = [Depends(enforce_policy)]
