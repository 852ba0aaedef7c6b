"""Kafka record headers (after Hono's telemetry spec): metadata travels in headers, the value is plain JSON."""

from __future__ import annotations

import uuid

CONTENT_TYPE = "content-type"
SCHEMA = "schema"
PRODUCED_BY = "produced-by"
# Unique per record: a UUID by default; the ingest gate writes `<sensor_id>:<seq>` on readings topics, the anomaly
# worker `<sensor_id>:<metric>:<window start, epoch s>` on rollups (a republished window keeps its id).
EVENT_ID = "event-id"
# On the raw topic only: `<key_id>.<secret>` of a sensor or gateway credential.
CREDENTIAL = "credential"

JSON = b"application/json"

Headers = list[tuple[str, bytes]]


def make_headers(schema: str, produced_by: str, event_id: str | None = None) -> Headers:
    """Headers every CityStream producer puts on a record."""
    return [
        (CONTENT_TYPE, JSON),
        (SCHEMA, schema.encode()),
        (PRODUCED_BY, produced_by.encode()),
        (EVENT_ID, (event_id or str(uuid.uuid4())).encode()),
    ]


def header_value(headers: Headers | None, name: str) -> str | None:
    """The last value of header `name`, decoded as UTF-8, or None."""
    found = None
    for key, value in headers or ():
        if key == name and value is not None:
            found = value.decode("utf-8", errors="replace")
    return found
