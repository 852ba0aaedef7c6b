-- Readings keep two indexes instead of four: every index is written for every reading stored, and the sink's
-- INSERT spends most of its PostgreSQL time keeping them up (python -m services.ingest.sinkprobe; on this
-- project's 2-core machine a 2,000-row batch cost 14-16 µs of backend CPU per reading with four, 9-10 with two).
--
-- * The primary key becomes (sensor_id, observed_at, seq). Same columns, so the same rows are duplicates and the
--   sink's ON CONFLICT DO NOTHING keeps exactly-once storage by (sensor_id, seq) as before; with the time second,
--   it also serves "a sensor's readings over a time range, newest first" (series, drill-down, latest per sensor,
--   retention's per-sensor delete) — what readings_sensor_time was there for.
-- * readings_observed_at_idx (TimescaleDB's default time index) goes: chunk exclusion on observed_at already
--   narrows time-only queries to the chunks in range, and domain-wide ones use readings_domain_time.
--
-- On a large existing table the new key is built over every chunk inside this migration's transaction: run it in
-- a maintenance window (docs/deploy.md, "Upgrading an existing installation").
DROP INDEX IF EXISTS readings_sensor_time;
DROP INDEX IF EXISTS readings_observed_at_idx;
ALTER TABLE readings DROP CONSTRAINT IF EXISTS readings_pkey;
ALTER TABLE readings ADD CONSTRAINT readings_pkey PRIMARY KEY (sensor_id, observed_at, seq);
