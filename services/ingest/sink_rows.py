"""Turns records of the readings, rejected, alerts and rollups topics into rows of the 0001 tables (pure)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from pydantic import ValidationError

from schemas.alerts import AlertEvent
from schemas.common import Domain
from schemas.rejections import RejectedReading
from schemas.rollups import Rollup
from schemas.topics import ALERTS, REJECTED_READINGS, ROLLUPS_1M, readings_topic

READINGS_TOPICS = tuple(readings_topic(domain) for domain in Domain)
DOMAIN_VALUES = frozenset(domain.value for domain in Domain)  # a set lookup per row, not an Enum() call
SINK_TOPICS = (*READINGS_TOPICS, REJECTED_READINGS, ALERTS, ROLLUPS_1M)
TABLE_BY_TOPIC = {**{topic: "readings" for topic in READINGS_TOPICS}, REJECTED_READINGS: "rejections",
                  ALERTS: "alert_events", ROLLUPS_1M: "rollups_1m"}


class Poison(ValueError):
    """A record that can never become a row; it is dead-lettered with this explanation."""


def _aware(text: Any, name: str) -> datetime:
    if not isinstance(text, str):
        raise Poison(f"{name} is not a timestamp string")
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise Poison(f"{name} has no timezone offset")
    return value


def reading_row(value: dict) -> tuple:
    sensor_id, seq, version = value["sensor_id"], value["seq"], value["register_version"]
    if not isinstance(sensor_id, str) or not isinstance(seq, int) or not isinstance(version, int):
        raise Poison("sensor_id, seq or register_version has the wrong type")
    if not (0 <= seq < 2**63 and 0 <= version < 2**31):  # the bigint and integer columns
        raise Poison("seq or register_version is out of range")
    metrics, domain = value["metrics"], value["domain"]
    if not isinstance(metrics, dict):
        raise Poison("metrics is not an object")
    if not isinstance(domain, str) or domain not in DOMAIN_VALUES:
        raise Poison(f"domain {domain!r} is not one of {sorted(DOMAIN_VALUES)}")
    return (_aware(value["observed_at"], "observed_at"), sensor_id, seq, domain,
            _aware(value["received_at"], "received_at"), version, orjson.dumps(metrics).decode())


def rejection_row(value: dict) -> tuple:
    event = RejectedReading.model_validate(value)
    payload = None if event.payload is None else orjson.dumps(event.payload).decode()
    return (event.received_at, UUID(event.event_id), event.sensor_id, event.seq, event.reason.value, event.detail,
            event.field, event.source, payload)


def alert_row(value: dict) -> tuple:
    event = AlertEvent.model_validate(value)
    return (event.occurred_at, event.event_id, event.alert_id, event.event_type.value, event.sensor_id,
            event.domain.value, event.kind.value, event.severity.value, event.status.value, event.opened_at,
            event.explanation.model_dump_json(), event.actor, event.assignee, event.comment, event.resolved_at)


def rollup_row(value: dict) -> tuple:
    rollup = Rollup.model_validate(value)
    return (rollup.window_start, rollup.sensor_id, rollup.metric, rollup.domain.value, rollup.count, rollup.min,
            rollup.max, rollup.mean, rollup.last)


_ROW_BY_TABLE = {"readings": reading_row, "rejections": rejection_row, "alert_events": alert_row,
                 "rollups_1m": rollup_row}


def to_row(table: str, value: bytes | None) -> tuple:
    """The row for a record's value; raises Poison with the reason when there is none."""
    if value is None:
        raise Poison("record has no value")
    try:
        document = orjson.loads(value)
        if not isinstance(document, dict):
            raise Poison("value is not a JSON object")
        return _ROW_BY_TABLE[table](document)
    except Poison:
        raise
    except (ValueError, KeyError, TypeError, ValidationError) as problem:
        raise Poison(f"{type(problem).__name__}: {problem}") from None
