"""Live alert hub: one consumer of `citystream.alerts.v1` fans events out to SSE/WebSocket subscribers.

Event ids are position vectors: the next offset of every partition after the event ("12.5.0.7" for partitions
0..3). Everything below a vector has been delivered, so a client resuming from it misses nothing; the hub's
buffer serves recent history and a short-lived consumer fetches what the buffer no longer holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field

from schemas.alerts import AlertEvent

log = logging.getLogger(__name__)

Vector = tuple[int, ...]


@dataclass(frozen=True)
class Delivered:
    partition: int
    offset: int
    event: AlertEvent
    vector: Vector

    @property
    def event_id(self) -> str:
        return format_vector(self.vector)


def format_vector(vector: Vector) -> str:
    return ".".join(str(offset) for offset in vector)


def parse_vector(text: str, partitions: int) -> Vector:
    """Raises ValueError unless `text` is `partitions` non-negative integers joined by dots."""
    parts = text.strip().split(".")
    if len(parts) != partitions or not all(part.isdigit() for part in parts):
        raise ValueError(f"expected {partitions} offsets joined by '.', got {text[:60]!r}")
    return tuple(int(part) for part in parts)


@dataclass(eq=False)  # identity semantics: each subscriber is its own
class Subscription:
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(maxsize=2000))
    overflowed: bool = False


class AlertHub:
    """Pure in-memory state; `services.api.hub_consumer` feeds it from Kafka."""

    def __init__(self, max_events: int = 50_000) -> None:
        self.max_events = max_events
        self.buffer: deque[Delivered] = deque()
        self.start: list[int] = []  # lowest offset per partition that the buffer covers
        self.position: list[int] = []  # next offset per partition
        self.latest_by_alert: dict[str, AlertEvent] = {}
        self.subscriptions: set[Subscription] = set()
        self.ready = False
        self.catch_up_to: list[int] = []  # end offsets when following began: below them is history, not live

    def begin(self, start_offsets: list[int], end_offsets: list[int] | None = None) -> None:
        self.start, self.position = list(start_offsets), list(start_offsets)
        self.catch_up_to = list(end_offsets if end_offsets is not None else start_offsets)
        self.ready = True

    @property
    def caught_up(self) -> bool:
        """Following, and has read everything the topic held when it started (what /readyz waits for)."""
        return self.ready and all(have >= want for have, want in zip(self.position, self.catch_up_to, strict=True))

    @property
    def vector(self) -> Vector:
        return tuple(self.position)

    def ingest(self, partition: int, offset: int, event: AlertEvent | None) -> Delivered | None:
        """Record one consumed record (None = unparsable, skipped but counted as read)."""
        self.position[partition] = max(self.position[partition], offset + 1)
        if event is None:
            return None
        delivered = Delivered(partition, offset, event, self.vector)
        self.buffer.append(delivered)
        known = self.latest_by_alert.get(event.alert_id)
        if known is None or event.occurred_at >= known.occurred_at:
            self.latest_by_alert[event.alert_id] = event
        while len(self.buffer) > self.max_events:
            dropped = self.buffer.popleft()
            self.start[dropped.partition] = max(self.start[dropped.partition], dropped.offset + 1)
        for subscription in list(self.subscriptions):
            try:
                subscription.queue.put_nowait(delivered)
            except asyncio.QueueFull:
                # A stalled client: end its stream; it reconnects with Last-Event-ID and resumes from the buffer.
                subscription.overflowed = True
                self.subscriptions.discard(subscription)
        return delivered

    def subscribe(self, resume_from: Vector | None) -> tuple[Subscription, Vector, list[Delivered],
                                                             dict[int, tuple[int, int]]]:
        """Atomically (no await in between): a live queue, the position it starts from (`resume_from`, or the
        hub's position now), the buffered events after `resume_from`, and the offset gaps (partition → [from, to))
        older than the buffer that must be fetched from Kafka first. Everything at or after the returned
        position reaches the queue, so it is a safe id to resume from even before the first live event."""
        subscription = Subscription()
        self.subscriptions.add(subscription)
        if resume_from is None:
            return subscription, self.vector, [], {}
        gaps = {p: (resume_from[p], self.start[p]) for p in range(len(self.start)) if resume_from[p] < self.start[p]}
        replay = [item for item in self.buffer if item.offset >= resume_from[item.partition]]
        return subscription, tuple(resume_from), replay, gaps

    def unsubscribe(self, subscription: Subscription) -> None:
        self.subscriptions.discard(subscription)
