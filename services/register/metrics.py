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

# Retention (services/register/retention.py): one run per interval in the register, or `citystream retention run`.
RETENTION_RUNS = Counter("citystream_retention_runs_total", "Retention runs, by outcome (ok, failed, skipped: "
                         "another process held the lock).", ["outcome"])
RETENTION_ROWS = Counter("citystream_retention_rows_deleted_total", "Rows removed past their sensor's declared "
                         "retention, by table and how (row_delete, chunk_drop).", ["table", "how"])
RETENTION_CHUNKS = Counter("citystream_retention_chunks_dropped_total", "Whole chunks dropped (every row past every "
                           "sensor's retention), by table.", ["table"])
RETENTION_DURATION = Gauge("citystream_retention_last_run_duration_seconds", "Duration of the last successful run.")
RETENTION_LAST_SUCCESS = Gauge("citystream_retention_last_success_timestamp_seconds",
                               "Unix time at which the last retention run finished.")
