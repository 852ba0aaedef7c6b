"""The sensor directory: the register topic `citystream.register.sensors.v1` materialised in memory (for locations)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pydantic import ValidationError

from schemas.register import SensorRegistration
from services.common.compacted import CompactedTopicFollower
from services.common.settings import KafkaAccess

log = logging.getLogger(__name__)

BBox = tuple[float, float, float, float]  # min longitude, min latitude, max longitude, max latitude


class SensorDirectory:
    """Highest version of every registered sensor; a tombstone forgets the sensor."""

    def __init__(self) -> None:
        self.sensors: dict[str, SensorRegistration] = {}
        self.caught_up = False

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        sensor_id = key.decode("utf-8", errors="replace")
        if value is None:
            self.sensors.pop(sensor_id, None)
            return
        try:
            record = SensorRegistration.model_validate_json(value)
        except ValidationError as problem:
            log.warning("register record for %s does not parse; skipped: %s", sensor_id, problem.errors()[:1])
            return
        known = self.sensors.get(record.sensor_id)
        if known is None or record.version >= known.version:
            self.sensors[record.sensor_id] = record

    def location(self, sensor_id: str) -> tuple[float, float] | None:
        record = self.sensors.get(sensor_id)
        return record.location if record else None

    def in_bbox(self, bbox: BBox) -> list[str]:
        return sorted(sensor_id for sensor_id, record in self.sensors.items()
                      if record.location and contains(bbox, record.location))

    def located(self, sensor_ids: Iterable[str], bbox: BBox) -> set[str]:
        return {sensor_id for sensor_id in sensor_ids if contains(bbox, self.location(sensor_id))}


def contains(bbox: BBox, point: tuple[float, float] | None) -> bool:
    if point is None:
        return False
    longitude, latitude = point
    return bbox[0] <= longitude <= bbox[2] and bbox[1] <= latitude <= bbox[3]


def register_follower(directory: SensorDirectory, kafka: KafkaAccess, topic: str, client_id: str) -> CompactedTopicFollower:
    """Reads the compacted register topic from the beginning into `directory`, then keeps following it."""
    follower = CompactedTopicFollower(kafka, topic, directory.apply, client_id=client_id, poll_ms=500)
    follower.on_batch = lambda: _mark_caught_up(directory, follower, topic)
    return follower


def _mark_caught_up(directory: SensorDirectory, follower: CompactedTopicFollower, topic: str) -> None:
    if follower.caught_up.is_set() and not directory.caught_up:
        directory.caught_up = True
        log.info("sensor directory caught up with %s: %d sensors", topic, len(directory.sensors))
