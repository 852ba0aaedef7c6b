"""Credentials and tokens: sensor credential issue/rotation, gateway credentials, revocation, owner tokens."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from services.register import auth
from services.register.deps import Caller, Connection, Context
from services.register.domain import RegisterError
from services.register.models import GatewayCreate, IssuedCredential, OwnerTokenCreate, RotateRequest
from services.register.policy import SECURED, Access, access

router = APIRouter(prefix="/v1", tags=["access"], dependencies=SECURED)


@router.post("/sensors/{sensor_id}/credentials", status_code=status.HTTP_201_CREATED,
             response_model=IssuedCredential, openapi_extra=access(Access.OWNER))
async def issue_credential(sensor_id: str, context: Context, caller: Caller,
                           body: RotateRequest | None = None) -> IssuedCredential:
    """Issue a sensor credential, shown once. Earlier ones keep working until `replaced_not_after` (rotation)."""
    overlap = body.overlap_seconds if body else None
    return await context.credentials.rotate_credential(caller, sensor_id, overlap)


@router.post("/gateway-credentials", status_code=status.HTTP_201_CREATED, response_model=IssuedCredential, openapi_extra=access(Access.OWNER))
async def issue_gateway_credential(body: GatewayCreate, context: Context, caller: Caller) -> IssuedCredential:
    """One credential (shown once) that may publish for each of the listed sensors."""
    return await context.credentials.issue_gateway(caller, body.sensor_ids)


@router.delete("/credentials/{key_id}", status_code=status.HTTP_204_NO_CONTENT, openapi_extra=access(Access.OWNER))
async def revoke_credential(key_id: str, context: Context, caller: Caller) -> Response:
    """Revoke at once: the credential leaves every sensor record it was listed in."""
    await context.credentials.revoke_credential(caller, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/owner-tokens", status_code=status.HTTP_201_CREATED, openapi_extra=access(Access.ADMIN))
async def issue_owner_token(body: OwnerTokenCreate, context: Context, caller: Caller, conn: Connection) -> dict:
    """Admin only: an API token for one organisation's owners, shown once."""
    caller.require_admin()
    token_id, token = await auth.issue_owner_token(conn, body.organisation, caller.name, context.clock())
    return {"token_id": token_id, "organisation": body.organisation, "token": token}


@router.delete("/owner-tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT, openapi_extra=access(Access.ADMIN))
async def revoke_owner_token(token_id: str, context: Context, caller: Caller, conn: Connection) -> Response:
    caller.require_admin()
    if not await auth.revoke_owner_token(conn, token_id, context.clock()):
        raise RegisterError(404, "UNKNOWN_TOKEN", "token_id", f"no active token {token_id!r}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
