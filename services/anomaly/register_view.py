"""Materialises the compacted register topic `citystream.register.sensors.v1` into per-sensor detector profiles."""

from __future__ import annotations

import logging

from pydantic import ValidationError

from schemas.register import SensorRegistration
from services.anomaly.detectors import Profile
from services.common import jsonwire
from services.common.compacted import CompactedTopicFollower
from services.common.settings import KafkaAccess

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

    def follower(self, kafka: KafkaAccess, topic: str) -> CompactedTopicFollower:
        """Replays the register from the beginning into this view, then follows it (see services.common.compacted)."""
        return CompactedTopicFollower(kafka, topic, self.apply, client_id="anomaly-register-view", poll_ms=500)
