"""Bearer-token roles (admin from settings, owners per organisation from register_owner_tokens); deny by default."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import asyncpg

from services.register.credentials import sha256_hex, tokens_match
from services.register.domain import RegisterError


class Role(StrEnum):
    ADMIN = "admin"
    OWNER = "owner"


@dataclass(frozen=True)
class Principal:
    role: Role
    organisation: str | None  # None for admins: they act for every organisation
    name: str  # who, as written to the audit log

    def require_admin(self) -> None:
        if self.role is not Role.ADMIN:
            raise RegisterError(403, "FORBIDDEN", "authorization", "this action needs the admin role")

    def require_organisation(self, organisation: str, field: str = "owner_organisation") -> None:
        """Owners act only on their own organisation's sensors; admins on all."""
        if self.role is Role.OWNER and organisation != self.organisation:
            raise RegisterError(403, "FORBIDDEN", field,
                                f"token of organisation {self.organisation!r} may not act for {organisation!r}")


def bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise RegisterError(401, "UNAUTHENTICATED", "authorization", "send `Authorization: Bearer <token>`")
    return token.strip()


async def authenticate(conn: asyncpg.Connection, token: str, admin_token: str) -> Principal:
    if tokens_match(token, admin_token):
        return Principal(Role.ADMIN, None, "admin")
    # Owner tokens are 256-bit random strings: looking up their SHA-256 leaks nothing usable by timing.
    row = await conn.fetchrow("SELECT token_id, organisation FROM register_owner_tokens"
                              " WHERE token_sha256 = $1 AND revoked_at IS NULL", sha256_hex(token))
    if row is None:
        raise RegisterError(401, "UNAUTHENTICATED", "authorization", "unknown or revoked token")
    return Principal(Role.OWNER, row["organisation"], f"owner:{row['organisation']}:{row['token_id']}")


async def issue_owner_token(conn: asyncpg.Connection, organisation: str, created_by: str,
                            now: datetime) -> tuple[str, str]:
    """A new owner token for `organisation`: (token_id, token). The token is shown once; only its hash is kept."""
    token_id, token = f"tok_{secrets.token_hex(6)}", f"cso_{secrets.token_urlsafe(32)}"
    await conn.execute("INSERT INTO register_owner_tokens (token_sha256, token_id, organisation, created_by,"
                       " created_at) VALUES ($1, $2, $3, $4, $5)", sha256_hex(token), token_id, organisation,
                       created_by, now)
    return token_id, token


async def revoke_owner_token(conn: asyncpg.Connection, token_id: str, now: datetime) -> bool:
    result = await conn.execute("UPDATE register_owner_tokens SET revoked_at = $2 WHERE token_id = $1"
                                " AND revoked_at IS NULL", token_id, now)
    return result.endswith(" 1")
