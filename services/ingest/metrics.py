"""Prometheus metrics of the ingest processes (names `citystream_ingest_*`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

READINGS = Counter("citystream_ingest_readings_total", "Readings decided by the gate.",
                   ["path", "outcome", "reason", "domain"])
BATCH_SIZE = Histogram("citystream_ingest_batch_readings", "Readings per HTTP batch or Kafka take.", ["path"],
                       buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10_000))
ACK_LATENCY = Histogram("citystream_ingest_ack_latency_seconds", "From first send to the last Kafka ack.", ["path"],
                        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
KAFKA_UNAVAILABLE = Counter("citystream_ingest_kafka_unavailable_total", "Batches answered 503: no ack in time.")
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
