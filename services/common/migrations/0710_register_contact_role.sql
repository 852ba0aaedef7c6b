-- The register's public point of contact per sensor: a role or functional mailbox shown on the public map
-- (issue 17). Optional: existing sensors keep none until their owner declares one.
ALTER TABLE register_sensors ADD COLUMN IF NOT EXISTS contact_role text
    CHECK (contact_role IS NULL OR char_length(contact_role) BETWEEN 2 AND 120);
