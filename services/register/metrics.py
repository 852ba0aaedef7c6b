"""Prometheus metrics of the register (module-level: registered once per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CHANGES = Counter("citystream_register_changes_total", "Committed register changes, by action.", ["action"])
OUTBOX_PUBLISHED = Counter("citystream_register_outbox_published_total",
                           "Outbox records put on the register topic (tombstones included).")
OUTBOX_FAILURES = Counter("citystream_register_outbox_failures_total", "Relay passes that failed and will retry.")
OUTBOX_PENDING = Gauge("citystream_register_outbox_pending", "Outbox records not yet on the topic (last pass).")
REQUESTS_REFUSED = Counter("citystream_register_requests_refused_total", "Requests answered with a 4xx, by reason.",
                           ["reason"])
