"""Materialises the compacted register topic `citystream.register.sensors.v1` into per-sensor detector profiles."""

from __future__ import annotations

import asyncio
import logging

from pydantic import ValidationError

from schemas.register import SensorRegistration
from services.anomaly.detectors import Profile
from services.common import jsonwire
from services.common.kafka import make_consumer

log = logging.getLogger(__name__)


def profile_of(registration: SensorRegistration) -> Profile:
    """Declared physical ranges and reporting interval: what the detectors need from the register."""
    return Profile(ranges={m.name: (m.min, m.max) for m in registration.metrics},
                   interval_s=registration.reporting_interval_s)


class RegisterView:
    """Every worker reads the whole (1-partition) register without a consumer group, from the beginning."""

    def __init__(self) -> None:
        self.profiles: dict[str, Profile] = {}

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        sensor_id = key.decode("utf-8", errors="replace")
        if value is None:
            self.profiles.pop(sensor_id, None)
            return
        try:
            self.profiles[sensor_id] = profile_of(SensorRegistration.model_validate(jsonwire.loads(value)))
        except (ValueError, ValidationError) as problem:
            log.warning("register record for %s unreadable, keeping the previous profile: %s", sensor_id, problem)

    async def follow(self, bootstrap: str, topic: str) -> None:
        consumer = make_consumer(bootstrap, None, topic)
        await consumer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=1000)
                for records in batches.values():
                    for record in records:
                        self.apply(record.key, record.value)
        except asyncio.CancelledError:
            raise
        finally:
            await consumer.stop()
