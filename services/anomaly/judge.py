"""Judges a batch of readings records of one topic partition (pure but for the outbox it fills): decode
(services/anomaly/decode.py), the sensor's state from the cache, the engine, the changed state marked for the next
flush, alert events and rollups queued as output records, malformed records as rejections.

Per reading it does only what the reading needs: the clock is read once per batch, Prometheus counters are added
up in a `Tally` and exported once per batch.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from schemas.topics import ALERTS, REJECTED_READINGS, ROLLUPS_1M
from services.anomaly import decode, metrics, wire
from services.anomaly.detectors import DEFAULT_PROFILE, Obs, Profile
from services.anomaly.engine import Engine, Outcome
from services.anomaly.outbox import Outbox
from services.anomaly.sensors import SensorStates
from services.common.settings import CommonSettings

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Tally:
    """What a batch adds to the worker's counters, exported once per batch."""

    readings: Counter = field(default_factory=Counter)  # domain → readings judged
    rejected: Counter = field(default_factory=Counter)  # domain → malformed readings
    errors: Counter = field(default_factory=Counter)  # stage → messages whose processing raised
    alert_events: Counter = field(default_factory=Counter)  # (kind, event type) → events published
    rollups: int = 0

    def export(self) -> None:
        for domain, count in self.readings.items():
            metrics.READINGS.labels(domain).inc(count)
        for domain, count in self.rejected.items():
            metrics.REJECTED.labels(domain).inc(count)
        for stage, count in self.errors.items():
            metrics.ERRORS.labels(stage).inc(count)
        for (kind, event_type), count in self.alert_events.items():
            metrics.ALERT_EVENTS.labels(kind, event_type).inc(count)
        if self.rollups:
            metrics.ROLLUPS.inc(self.rollups)


@dataclass(frozen=True, slots=True)
class Outputs:
    """Where the worker's records go (deployment-prefixed topic names) and who it says produced them."""

    alerts: str
    rollups: str
    rejected: str
    settings: CommonSettings


class BatchJudge:
    def __init__(self, engines: Mapping[str, Engine], states: SensorStates, profiles: Mapping[str, Profile],
                 outputs: Outputs, source_for: Callable[[str, int], Any]) -> None:
        """`profiles` is the register view's live mapping; `source_for(topic, partition)` is what the states'
        `bind` gets for that partition's writes and cache misses."""
        self.engines, self.states, self.profiles, self.outputs = engines, states, profiles, outputs
        self.source_for = source_for

    def readings(self, domain: str, topic: str, partition: int, records, outbox: Outbox, now: float,
                 tally: Tally) -> None:
        """Judge `records` (aiokafka ConsumerRecords of one partition, in offset order) at arrival time `now`."""
        engine, profiles, states = self.engines[domain], self.profiles, self.states
        get, touch, observe, fast = states.get, states.touch, engine.observe, decode.fast
        source = self.source_for(topic, partition)
        states.bind(source)  # a cache miss reads the table in this partition
        judged = 0
        try:
            for record in records:
                try:
                    raw = record.value
                    found = fast(raw, domain) if raw is not None else None
                    if found is None:
                        found = self._checked(raw, domain, record, outbox, tally)
                        if found is None:
                            continue
                    sensor_id, seq, t, values = found
                    state = get(sensor_id, partition, domain)
                    outcome = observe(state, Obs(sensor_id, seq, t, values),
                                      profiles.get(sensor_id, DEFAULT_PROFILE), arrival=now)
                    judged += 1
                    if not outcome.duplicate:
                        touch(sensor_id, state, t, source)
                        if outcome.events or outcome.rollups:
                            self.publish(outbox, sensor_id, outcome, tally)
                except Exception:  # one sensor's failure must never stall the partition
                    tally.errors["reading"] += 1
                    log.exception("judging failed on %s[%s]@%s key %r", topic, partition, record.offset,
                                  record.key)
        finally:
            states.bind(None)
        tally.readings[domain] += judged

    def _checked(self, raw: bytes | None, domain: str, record, outbox: Outbox, tally: Tally):
        """The model's verdict on a record the plain check could not vouch for: its fields, or None after queuing
        the rejection (a poison record never stops the loop)."""
        try:
            return decode.checked(raw, domain)
        except (ValueError, ValidationError) as problem:
            tally.rejected[domain] += 1
            timestamp_s = record.timestamp / 1000 if record.timestamp is not None else None
            rejection = wire.rejection(raw, problem, domain, record.topic, record.partition, record.offset,
                                       timestamp_s)
            outbox.add(self.outputs.rejected, record.key, wire.dumps(rejection),
                       wire.headers(REJECTED_READINGS, rejection.event_id, self.outputs.settings))
            log.warning("rejected %s[%s]@%s: %s", record.topic, record.partition, record.offset, rejection.detail)
            return None

    def publish(self, outbox: Outbox, sensor_id: str, outcome: Outcome, tally: Tally) -> None:
        key, outputs = sensor_id.encode(), self.outputs
        for event in outcome.events:
            tally.alert_events[(event.kind.value, event.event_type.value)] += 1
            outbox.add(outputs.alerts, key, wire.dumps(event),
                       wire.headers(ALERTS, event.event_id, outputs.settings, event))
        for rollup in outcome.rollups:
            outbox.add(outputs.rollups, key, wire.dumps(rollup),
                       wire.headers(ROLLUPS_1M, wire.rollup_event_id(rollup), outputs.settings))
        tally.rollups += len(outcome.rollups)
