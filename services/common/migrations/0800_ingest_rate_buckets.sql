-- Per-sensor token buckets shared by every ingest-http process (services/ingest/quota_store.py): a process leases
-- a few tokens at a time from its sensor's row, so one sensor's quota holds however many processes or pods serve it.
-- UNLOGGED: rewritten at request rate and worthless after a crash (PostgreSQL empties an unlogged table then, and an
-- empty table only means every sensor starts from one full minute's allowance, as after a restart of one process).
CREATE UNLOGGED TABLE IF NOT EXISTS ingest_rate_buckets (
    sensor_id        text             PRIMARY KEY,
    rate_per_minute  integer          NOT NULL CHECK (rate_per_minute >= 1),
    tokens           double precision NOT NULL CHECK (tokens >= 0),
    updated_at       timestamptz      NOT NULL,
    granted          integer          NOT NULL CHECK (granted >= 0)  -- what the last lease took, for RETURNING
);

-- A bucket's tokens after refilling at its rate since `updated_at`, on the database's clock, capped at one minute.
CREATE OR REPLACE FUNCTION ingest_rate_refilled(tokens double precision, updated_at timestamptz,
                                                rate_per_minute integer) RETURNS double precision
    LANGUAGE sql STABLE AS $$
    SELECT LEAST(rate_per_minute::double precision,
                 tokens + GREATEST(0, extract(epoch FROM now() - updated_at))::double precision * rate_per_minute / 60.0)
$$;

-- ingest-http connects as the application role (as the sink does): it reads, creates and updates bucket rows.
GRANT USAGE ON SCHEMA public TO citystream_app;
GRANT SELECT, INSERT, UPDATE ON ingest_rate_buckets TO citystream_app;
