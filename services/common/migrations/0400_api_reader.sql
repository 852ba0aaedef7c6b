-- The operations API reads with its own role: SELECT on the time-series tables only (read-mostly; its writes
-- are commands on Kafka). Roles are cluster-wide, so creation is guarded against concurrent migrations.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'citystream_reader') THEN
        CREATE ROLE citystream_reader LOGIN PASSWORD 'citystream_reader';
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    RAISE NOTICE 'citystream_reader was created concurrently';
END
$$;

GRANT USAGE ON SCHEMA public TO citystream_reader;
GRANT SELECT ON readings, rejections, alert_events, rollups_1m TO citystream_reader;
