"""Credentials as presented (`<key_id>.<secret>`) and their check against the register's hashes, in constant time."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from schemas.register import CredentialHash


@dataclass(frozen=True, slots=True)
class PresentedCredential:
    """What a sender showed: the public key id and the SHA-256 of the secret (the secret itself is not kept)."""

    key_id: str
    secret_sha256: str


def parse_credential(text: str | None) -> PresentedCredential | None:
    """`<key_id>.<secret>` → PresentedCredential; None when absent or not of that shape."""
    if not text:
        return None
    key_id, dot, secret = text.strip().partition(".")
    if not dot or not key_id or not secret or len(text) > 512:
        return None
    return PresentedCredential(key_id, hashlib.sha256(secret.encode("utf-8")).hexdigest())


def parse_bearer(authorization: str | None) -> PresentedCredential | None:
    """`Authorization: Bearer <key_id>.<secret>` → PresentedCredential or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return parse_credential(token)


def matches(presented: PresentedCredential, stored: CredentialHash, now: datetime) -> bool:
    """True when the secret hashes to the stored hash and the credential has not passed its `not_after`."""
    if stored.key_id != presented.key_id:
        return False
    same = hmac.compare_digest(presented.secret_sha256.encode(), stored.secret_sha256.encode())
    return same and (stored.not_after is None or now < stored.not_after)
