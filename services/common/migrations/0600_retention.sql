-- Retention as declared in the register: the job (services/register/retention.py) runs as its own role, which may
-- read the register's retention_days, delete from readings, rejections and rollups_1m, and append to the audit log.
-- The sink (citystream_app) keeps append-only rights on the time-series tables; the API reader stays read-only.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'citystream_retention') THEN
        CREATE ROLE citystream_retention LOGIN PASSWORD 'citystream_retention';
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    RAISE NOTICE 'citystream_retention was created concurrently';
END
$$;

GRANT USAGE ON SCHEMA public TO citystream_retention;
GRANT SELECT ON register_sensors TO citystream_retention;
GRANT SELECT, DELETE ON readings, rejections, rollups_1m TO citystream_retention;
GRANT SELECT, INSERT ON register_audit_log TO citystream_retention;
GRANT USAGE, SELECT ON SEQUENCE register_audit_log_audit_id_seq TO citystream_retention;

-- drop_chunks needs the hypertable's owner. This function runs as the owner (the migrations' role) and only for
-- the three retained tables, so the job never needs ownership. Works on the Apache build: drop_chunks is there
-- (only the automated retention *policy* is community-only, and CityStream does not use it).
CREATE OR REPLACE FUNCTION retention_drop_chunks(hypertable text, older_than timestamptz)
    RETURNS SETOF text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_catalog AS $$
BEGIN
    IF hypertable NOT IN ('readings', 'rejections', 'rollups_1m') THEN
        RAISE EXCEPTION 'retention_drop_chunks: % is not a retained table', hypertable
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN QUERY SELECT dropped::text FROM drop_chunks(hypertable::regclass, older_than => older_than) AS dropped;
END
$$;
REVOKE ALL ON FUNCTION retention_drop_chunks(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION retention_drop_chunks(text, timestamptz) TO citystream_retention;
