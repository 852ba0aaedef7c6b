"""Roles and route policies: every route declares who may call it; a route without a policy answers 403."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from enum import IntEnum

from fastapi import Depends
from starlette.exceptions import WebSocketException
from starlette.requests import HTTPConnection

from services.api.errors import ApiError

POLICY_KEY = "x-required-role"
TICKET_KEY = "x-live-ticket"
# Credentials that must never travel in a URL (they end up in access logs, proxies and browser history).
QUERY_CREDENTIALS = ("access_token", "token", "api_key")


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


def policy(role: Role, *, ticket: bool = False) -> dict:
    """`openapi_extra` for a route: its required role, visible in the OpenAPI document too. With `ticket`, the
    route also accepts a live-stream ticket (`?ticket=`, see services.api.tickets) instead of the header."""
    return {POLICY_KEY: role.name.lower(), **({TICKET_KEY: True} if ticket else {})}


def websocket_policy(role: Role, *, ticket: bool = False):
    """Decorator for WebSocket endpoints, which have no `openapi_extra`: the policy rides on the function."""
    def mark(endpoint):
        endpoint.required_role = role
        endpoint.accepts_ticket = ticket
        return endpoint
    return mark


def route_role(route) -> Role | None:
    """The role a route requires, or None when it declares no policy."""
    name = (getattr(route, "openapi_extra", None) or {}).get(POLICY_KEY)
    if name:
        return Role[name.upper()]
    return getattr(getattr(route, "endpoint", None), "required_role", None)


def route_accepts_ticket(route) -> bool:
    if (getattr(route, "openapi_extra", None) or {}).get(TICKET_KEY):
        return True
    return bool(getattr(getattr(route, "endpoint", None), "accepts_ticket", False))


def _bearer(connection: HTTPConnection) -> str | None:
    header = connection.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return None


def authenticate(connection: HTTPConnection) -> Principal:
    for name in QUERY_CREDENTIALS:
        if name in connection.query_params:
            raise ApiError(401, "TOKEN_IN_QUERY", "tokens are accepted only in the Authorization header; the live "
                           "stream takes a ticket from POST /v1/live/tickets", field=name)
    token = _bearer(connection)
    if not token:
        ticket = connection.query_params.get("ticket")
        if ticket and route_accepts_ticket(connection.scope.get("route")):
            return _redeem(connection, ticket)
        return ANONYMOUS
    for known, (role, name) in connection.app.state.tokens.items():
        if hmac.compare_digest(known.encode(), token.encode()):
            return Principal(Role[role.upper()], name)
    raise ApiError(401, "INVALID_TOKEN", "the bearer token is not known", field="authorization")


def _redeem(connection: HTTPConnection, secret: str) -> Principal:
    ticket = connection.app.state.tickets.redeem(secret, time.monotonic())
    if ticket is None:
        raise ApiError(401, "INVALID_TICKET", "the ticket is unknown, used or expired; ask POST /v1/live/tickets "
                       "for a new one", field="ticket")
    return Principal(Role[ticket.role.upper()], ticket.name)


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
