-- Time-series tables written by the ingest sink: readings, rejections, alert events, one-minute rollups.
-- Every hypertable's unique key includes its time column, as TimescaleDB requires, so the sink's
-- INSERT ... ON CONFLICT DO NOTHING makes replays idempotent.
CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE IF NOT EXISTS readings (
    observed_at      timestamptz NOT NULL,
    sensor_id        text        NOT NULL,
    seq              bigint      NOT NULL,
    domain           text        NOT NULL,
    received_at      timestamptz NOT NULL,
    register_version integer     NOT NULL,
    metrics          jsonb       NOT NULL,
    PRIMARY KEY (sensor_id, seq, observed_at)
);
-- One day per chunk: a city-wide day of readings fits memory; queries are mostly "last hours of a sensor".
SELECT create_hypertable('readings', by_range('observed_at', INTERVAL '1 day'), if_not_exists => TRUE);
CREATE INDEX IF NOT EXISTS readings_sensor_time ON readings (sensor_id, observed_at DESC);
CREATE INDEX IF NOT EXISTS readings_domain_time ON readings (domain, observed_at DESC);

CREATE TABLE IF NOT EXISTS rejections (
    received_at timestamptz NOT NULL,
    event_id    uuid        NOT NULL,
    sensor_id   text,
    seq         bigint,
    reason      text        NOT NULL,
    detail      text        NOT NULL,
    field       text,
    source      text        NOT NULL,
    payload     jsonb,
    PRIMARY KEY (event_id, received_at)
);
SELECT create_hypertable('rejections', by_range('received_at', INTERVAL '7 days'), if_not_exists => TRUE);
CREATE INDEX IF NOT EXISTS rejections_reason_time ON rejections (reason, received_at DESC);
CREATE INDEX IF NOT EXISTS rejections_sensor_time ON rejections (sensor_id, received_at DESC);

CREATE TABLE IF NOT EXISTS alert_events (
    occurred_at timestamptz NOT NULL,
    event_id    text        NOT NULL,
    alert_id    text        NOT NULL,
    event_type  text        NOT NULL,
    sensor_id   text        NOT NULL,
    domain      text        NOT NULL,
    kind        text        NOT NULL,
    severity    text        NOT NULL,
    status      text        NOT NULL,
    opened_at   timestamptz NOT NULL,
    explanation jsonb       NOT NULL,
    actor       text,
    assignee    text,
    comment     text,
    resolved_at timestamptz,
    PRIMARY KEY (event_id, occurred_at)
);
SELECT create_hypertable('alert_events', by_range('occurred_at', INTERVAL '30 days'), if_not_exists => TRUE);
CREATE INDEX IF NOT EXISTS alert_events_alert ON alert_events (alert_id, occurred_at DESC);
CREATE INDEX IF NOT EXISTS alert_events_sensor ON alert_events (sensor_id, occurred_at DESC);

CREATE TABLE IF NOT EXISTS rollups_1m (
    window_start timestamptz      NOT NULL,
    sensor_id    text             NOT NULL,
    metric       text             NOT NULL,
    domain       text             NOT NULL,
    count        integer          NOT NULL,
    min          double precision NOT NULL,
    max          double precision NOT NULL,
    mean         double precision NOT NULL,
    last         double precision NOT NULL,
    PRIMARY KEY (sensor_id, metric, window_start)
);
SELECT create_hypertable('rollups_1m', by_range('window_start', INTERVAL '7 days'), if_not_exists => TRUE);
