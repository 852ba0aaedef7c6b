"""Credential and token material: generated secrets (256 random bits), SHA-256 hashes, constant-time checks."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

SECRET_BYTES = 32  # 256 bits: a hash of such a secret cannot be brute-forced, so plain SHA-256 is enough.


@dataclass(frozen=True)
class NewSecret:
    key_id: str
    secret: str

    @property
    def credential(self) -> str:
        """`<key_id>.<secret>`: what the holder sends; shown once."""
        return f"{self.key_id}.{self.secret}"

    @property
    def secret_sha256(self) -> str:
        return sha256_hex(self.secret)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def new_secret(prefix: str) -> NewSecret:
    """A fresh key id (public) and secret; key ids contain no dot, so `<key_id>.<secret>` splits unambiguously."""
    return NewSecret(key_id=f"{prefix}_{secrets.token_hex(8)}", secret=secrets.token_urlsafe(SECRET_BYTES))


def split_credential(credential: str) -> tuple[str, str] | None:
    key_id, dot, secret = credential.partition(".")
    return (key_id, secret) if dot and key_id and secret else None


def verify_secret(secret: str, expected_sha256: str) -> bool:
    """Constant-time comparison of the secret's hash with the stored hash."""
    return hmac.compare_digest(sha256_hex(secret), expected_sha256)


def tokens_match(presented: str, expected: str) -> bool:
    return hmac.compare_digest(presented.encode(), expected.encode())
