"""Credentials as presented (`<key_id>.<secret>`) and their check against the register's hashes, in constant time.

A batch (an HTTP request, a Kafka take) usually shows one credential for many readings: `CredentialCheck` compares
it with each distinct stored hash once per batch instead of once per reading.
"""

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


class CredentialCheck:
    """One presented credential checked at one instant: `matches` with the hash comparison remembered per stored hash.

    Exact: the answer depends only on the presented credential (fixed), `now` (fixed) and the stored key id, hash
    and `not_after`; key id and expiry are compared on every call, only the constant-time hash compare is reused.
    Build one per batch; the memo holds one entry per distinct stored hash seen.
    """

    __slots__ = ("_same_hash", "now", "presented")

    def __init__(self, presented: PresentedCredential, now: datetime) -> None:
        self.presented = presented
        self.now = now
        self._same_hash: dict[str, bool] = {}

    @property
    def key_id(self) -> str:
        return self.presented.key_id

    def accepts(self, stored: CredentialHash) -> bool:
        if stored.key_id != self.presented.key_id:
            return False
        if stored.not_after is not None and not self.now < stored.not_after:
            return False
        same = self._same_hash.get(stored.secret_sha256)
        if same is None:
            same = self._same_hash[stored.secret_sha256] = hmac.compare_digest(
                self.presented.secret_sha256.encode(), stored.secret_sha256.encode())
        return same


class CredentialChecks:
    """Per batch of raw records: credential text → CredentialCheck, so each distinct credential is parsed and
    hashed once per batch (records of one city system share it). Holds at most one entry per distinct text."""

    __slots__ = ("_by_text", "now")

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._by_text: dict[str, CredentialCheck | None] = {}

    def of(self, text: str | None) -> CredentialCheck | None:
        if text is None:
            return None
        try:
            return self._by_text[text]
        except KeyError:
            presented = parse_credential(text)
            check = self._by_text[text] = CredentialCheck(presented, self.now) if presented is not None else None
            return check
