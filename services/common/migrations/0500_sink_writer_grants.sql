-- The ingest sink runs as the application role (citystream_app, created in 0100): it appends to the
-- time-series tables and never updates or deletes them. Staging happens in TEMP tables (PUBLIC may create those).
GRANT USAGE ON SCHEMA public TO citystream_app;
GRANT SELECT, INSERT ON readings, rejections, alert_events, rollups_1m TO citystream_app;
