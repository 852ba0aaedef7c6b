"""Live-stream tickets: short-lived, single-use secrets a browser trades its bearer header for (pure, in memory).

Browsers' EventSource and WebSocket cannot set an Authorization header, and a token in the query string ends up in
access logs and browser history. A ticket may: it opens one live stream, once, within `ttl_s`, and nothing else.
Tickets live in the process that issued them; with several API replicas, route `/v1/live/` with session affinity.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

TICKET_BYTES = 32


@dataclass(frozen=True)
class Ticket:
    role: str
    name: str
    expires_at_s: float


class TicketBook:
    """Issued tickets by the SHA-256 of their secret (a memory dump shows no usable ticket)."""

    def __init__(self, ttl_s: float, max_outstanding: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_outstanding = max_outstanding
        self._issued: dict[str, Ticket] = {}

    def issue(self, role: str, name: str, now_s: float) -> str:
        self._purge(now_s)
        if len(self._issued) >= self.max_outstanding:
            # A caller minting tickets in a loop must not grow the process without bound: drop the oldest.
            del self._issued[next(iter(self._issued))]
        secret = secrets.token_urlsafe(TICKET_BYTES)
        self._issued[_digest(secret)] = Ticket(role, name, now_s + self.ttl_s)
        return secret

    def redeem(self, secret: str, now_s: float) -> Ticket | None:
        """The ticket's holder, once; None when unknown, already used or expired."""
        ticket = self._issued.pop(_digest(secret), None)
        if ticket is None or now_s >= ticket.expires_at_s:
            return None
        return ticket

    def _purge(self, now_s: float) -> None:
        for key in [key for key, ticket in self._issued.items() if now_s >= ticket.expires_at_s]:
            del self._issued[key]

    def __len__(self) -> int:
        return len(self._issued)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
