"""Prometheus metrics of the anomaly worker (served on its /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

READINGS = Counter("citystream_anomaly_readings_total", "Readings judged by the detectors.", ["domain"])
REJECTED = Counter("citystream_anomaly_rejected_total", "Readings that failed validation in the worker.", ["domain"])
ALERT_EVENTS = Counter("citystream_anomaly_alert_events_total", "Alert events published.", ["kind", "event_type"])
ROLLUPS = Counter("citystream_anomaly_rollups_total", "One-minute rollups published.")
UNDECODABLE_STATES = Counter("citystream_anomaly_undecodable_states_total",
                             "Stored sensor states that did not decode and were treated as absent.", ["part"])
ERRORS = Counter("citystream_anomaly_errors_total", "Messages whose processing raised (logged, skipped).", ["stage"])
CONSUMER_LAG = Gauge("citystream_anomaly_consumer_lag_records",
                     "Readings not yet judged per assigned readings partition (log-end offset minus the next "
                     "offset to judge), updated every CITYSTREAM_ANOMALY_LAG_INTERVAL_S.", ["topic", "partition"])
