-- Sensor register: sensors, credentials, owner tokens, removal requests, the transactional outbox feeding
-- `citystream.register.sensors.v1`, and the append-only audit log.

-- Roles are cluster-wide while test databases are created concurrently: tolerate a parallel creator.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'citystream_app') THEN
        CREATE ROLE citystream_app LOGIN PASSWORD 'citystream_app';
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

CREATE TABLE IF NOT EXISTS register_sensors (
    sensor_id             text PRIMARY KEY,
    version               integer     NOT NULL CHECK (version >= 1),
    status                text        NOT NULL CHECK (status IN ('draft', 'active', 'suspended', 'retired')),
    domain                text        NOT NULL,
    owner_organisation    text        NOT NULL,
    owner_contact_name    text        NOT NULL,
    owner_contact_email   text        NOT NULL,
    metrics               jsonb       NOT NULL,
    location              jsonb       NOT NULL,
    location_description  text        NOT NULL DEFAULT '',
    description           text        NOT NULL DEFAULT '',
    purpose               text        NOT NULL,
    legal_ground          text        NOT NULL,
    personal_data         boolean     NOT NULL,
    privacy_statement_url text,
    retention_days        integer     NOT NULL CHECK (retention_days >= 0),
    reporting_interval_s  double precision NOT NULL CHECK (reporting_interval_s > 0),
    rate_limit_per_minute integer     NOT NULL CHECK (rate_limit_per_minute >= 1),
    active_from           timestamptz,
    active_until          timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    -- Highest version the relay has put on the topic; start-up reconciliation re-enqueues anything behind.
    published_version     integer     NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS register_sensors_org ON register_sensors (owner_organisation);
CREATE INDEX IF NOT EXISTS register_sensors_until ON register_sensors (active_until);

CREATE TABLE IF NOT EXISTS register_credentials (
    key_id        text PRIMARY KEY,
    kind          text        NOT NULL CHECK (kind IN ('sensor', 'gateway')),
    secret_sha256 text        NOT NULL CHECK (secret_sha256 ~ '^[0-9a-f]{64}$'),
    organisation  text        NOT NULL,
    not_after     timestamptz,
    revoked_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Which sensors a credential may publish for: one for a sensor credential, a declared list for a gateway.
CREATE TABLE IF NOT EXISTS register_credential_sensors (
    key_id    text NOT NULL REFERENCES register_credentials (key_id) ON DELETE CASCADE,
    sensor_id text NOT NULL REFERENCES register_sensors (sensor_id) ON DELETE CASCADE,
    PRIMARY KEY (key_id, sensor_id)
);
CREATE INDEX IF NOT EXISTS register_credential_sensors_sensor ON register_credential_sensors (sensor_id);

CREATE TABLE IF NOT EXISTS register_owner_tokens (
    token_sha256 text PRIMARY KEY,
    token_id     text        NOT NULL UNIQUE,
    organisation text        NOT NULL,
    created_by   text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);

CREATE TABLE IF NOT EXISTS register_removal_requests (
    request_id      bigserial PRIMARY KEY,
    sensor_id       text        NOT NULL REFERENCES register_sensors (sensor_id) ON DELETE CASCADE,
    reason          text        NOT NULL,
    requester_email text,
    status          text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    closed_at       timestamptz,
    closed_by       text,
    resolution      text
);

-- Written in the same transaction as the change; the relay publishes rows in id order and stamps them.
CREATE TABLE IF NOT EXISTS register_outbox (
    outbox_id    bigserial PRIMARY KEY,
    sensor_id    text        NOT NULL,
    version      integer     NOT NULL,
    payload      jsonb,      -- NULL = tombstone
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX IF NOT EXISTS register_outbox_pending ON register_outbox (outbox_id) WHERE published_at IS NULL;

CREATE TABLE IF NOT EXISTS register_audit_log (
    audit_id  bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text        NOT NULL,
    action    text        NOT NULL,
    sensor_id text,
    before    jsonb,
    after     jsonb
);
CREATE INDEX IF NOT EXISTS register_audit_log_sensor ON register_audit_log (sensor_id, audit_id);

-- Append-only even for roles that bypass grants (owners, superusers): history is evidence.
CREATE OR REPLACE FUNCTION register_audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'register_audit_log is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
DROP TRIGGER IF EXISTS register_audit_log_append_only ON register_audit_log;
CREATE TRIGGER register_audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON register_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION register_audit_log_is_append_only();

GRANT SELECT, INSERT, UPDATE, DELETE ON register_sensors, register_credentials, register_credential_sensors,
    register_owner_tokens, register_removal_requests, register_outbox TO citystream_app;
GRANT SELECT, INSERT ON register_audit_log TO citystream_app;
REVOKE UPDATE, DELETE, TRUNCATE ON register_audit_log FROM citystream_app;
GRANT USAGE, SELECT ON SEQUENCE register_removal_requests_request_id_seq, register_outbox_outbox_id_seq,
    register_audit_log_audit_id_seq TO citystream_app;
