"""Deny by default: every route declares who may call it (public, owner, admin); one app-wide dependency enforces it.

A route without a declared policy is refused to everyone, admins included, so a forgotten declaration fails closed.
"""

from __future__ import annotations

from enum import IntEnum

from fastapi import Depends, Request

from services.register.auth import Principal, Role, authenticate, bearer
from services.register.domain import RegisterError

POLICY_KEY = "x-access"


class Access(IntEnum):
    """Ordered: a higher level may do everything a lower one may."""

    PUBLIC = 0  # anyone, no token
    OWNER = 1  # an owner token (acting for its organisation only) or the admin
    ADMIN = 2  # the admin only


def access(level: Access) -> dict:
    """`openapi_extra` of a route: who may call it (also visible in the OpenAPI document)."""
    return {POLICY_KEY: level.name.lower()}


def route_access(route) -> Access | None:
    """The level a route requires, or None when it declares none."""
    name = (getattr(route, "openapi_extra", None) or {}).get(POLICY_KEY)
    return Access[name.upper()] if name else None


async def enforce_policy(request: Request) -> None:
    """App-wide dependency (runs before the route's own): no policy → 403; no or bad token → 401; too low → 403."""
    required = route_access(request.scope.get("route"))
    if required is None:
        raise RegisterError(403, "NO_POLICY", None, "this route declares no access policy and is denied")
    if required is Access.PUBLIC:
        return
    token = bearer(request.headers.get("authorization"))  # 401 before any database work
    context = request.app.state.register
    async with context.pool.acquire() as conn:
        principal = await authenticate(conn, token, context.settings.register_admin_token.get_secret_value())
    if required is Access.ADMIN and principal.role is not Role.ADMIN:
        raise RegisterError(403, "FORBIDDEN", "authorization", "this route needs the admin role")
    request.state.principal = principal


def current_principal(request: Request) -> Principal:
    """The caller `enforce_policy` authenticated; a public route asking for one is a wiring error, refused."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        raise RegisterError(403, "NO_POLICY", None, "this route needs a caller but declares no authenticated policy")
    return principal


SECURED = [Depends(enforce_policy)]
