"""Prometheus metrics of the ingest processes (names `citystream_ingest_*`), and how a gate outcome is labelled.

Sink rows per second: `rate(citystream_ingest_sink_rows_inserted_total[1m])` (or `…_sink_rows_total` for rows
offered, duplicates included)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from services.ingest.gate import Admitted, RegisterLookup, Rejected

READINGS = Counter("citystream_ingest_readings_total", "Readings decided by the gate.",
                   ["path", "outcome", "reason", "domain"])
BATCH_SIZE = Histogram("citystream_ingest_batch_readings", "Readings per HTTP batch or Kafka take.", ["path"],
                       buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10_000))
ACK_LATENCY = Histogram("citystream_ingest_ack_latency_seconds", "From first send to the last Kafka ack.", ["path"],
                        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
REQUESTS_REFUSED = Counter("citystream_ingest_http_requests_refused_total",
                            "Whole HTTP requests refused before the gate (too large, not JSON, ...).", ["reason"])
KAFKA_UNAVAILABLE = Counter("citystream_ingest_kafka_unavailable_total", "Batches answered 503: no ack in time.")
GATE_REBALANCED_AT = Gauge("citystream_ingest_gate_rebalanced_at_seconds",
                           "When the Kafka gate's raw partitions last changed (unix time): for a minute after, new "
                           "rate-limit buckets start with one token.")
QUOTA_LEASES = Counter("citystream_ingest_quota_leases_total",
                       "Shared-quota lease statements of ingest-http (one per batch lacking tokens), by outcome "
                       "(ok, unavailable: answered 503).", ["outcome"])
QUOTA_LEASE_LATENCY = Histogram("citystream_ingest_quota_lease_seconds", "One shared-quota lease statement.",
                                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1))
REGISTER_SENSORS = Gauge("citystream_ingest_register_sensors", "Sensors in the in-memory register view.")
SINK_ROWS = Counter("citystream_ingest_sink_rows_total", "Rows offered to the database by the sink.",
                    ["table"])
SINK_INSERTED = Counter("citystream_ingest_sink_rows_inserted_total", "Rows new to the database (not duplicates).",
                        ["table"])
SINK_BATCH = Histogram("citystream_ingest_sink_batch_records", "Records per sink batch.",
                       buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10_000))
SINK_LAG = Gauge("citystream_ingest_sink_lag_records", "Records behind the partition end.", ["topic", "partition"])
SINK_RETRIES = Counter("citystream_ingest_sink_retries_total", "Database write attempts that failed and are retried.")
SINK_DEAD_LETTERS = Counter("citystream_ingest_sink_dead_letters_total", "Poison records sent to the rejected topic.",
                            ["topic"])


def outcome_labels(outcome: Admitted | Rejected, register: RegisterLookup) -> tuple[str, str, str]:
    """(outcome, reason, domain) for READINGS. A rejection counts under its sensor's registered domain when the
    sensor is known (empty otherwise: an unknown sensor has no domain)."""
    if isinstance(outcome, Admitted):
        return "admitted", "", outcome.domain.value
    entry = register.get(outcome.sensor_id) if outcome.sensor_id else None
    return "rejected", outcome.reason.value, entry.record.domain.value if entry is not None else ""


def count_outcomes(path: str, outcomes: list[Admitted | Rejected], register: RegisterLookup) -> None:
    """READINGS for one batch: the admitted readings per domain in one pass (a quarter of labelling each one, which
    was ~0.25 µs per reading of ingest-http), the rejections (few) each labelled by `outcome_labels`."""
    admitted: dict = {}
    rejected: dict[tuple[str, str, str], int] = {}
    for outcome in outcomes:
        if type(outcome) is Admitted:
            admitted[outcome.domain] = admitted.get(outcome.domain, 0) + 1
        else:
            labels = outcome_labels(outcome, register)
            rejected[labels] = rejected.get(labels, 0) + 1
    for domain, count in admitted.items():
        READINGS.labels(path, "admitted", "", domain.value).inc(count)
    for (outcome, reason, domain), count in rejected.items():
        READINGS.labels(path, outcome, reason, domain).inc(count)
