-- Devices, their location history, enrollment keys, and DPoP binding of grants and token families.
-- Mirrors the SQLite backend's 0002_devices.sql table for table and column for column.
-- Registering a device locks its owner's `users` row (FOR NO KEY UPDATE), so the
-- device cap and slug choice are decided by one transaction at a time across replicas;
-- UNIQUE (owner_id, slug) is the last line of defence.

CREATE TABLE devices (
    id             TEXT PRIMARY KEY,
    owner_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    display_name   TEXT NOT NULL,
    slug           TEXT NOT NULL,
    location       TEXT,            -- NULL: the user chose to give it later
    platform       TEXT NOT NULL,
    client_version TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    last_seen_at   BIGINT,
    status         TEXT NOT NULL,
    revoked_at     BIGINT,
    public_jwk     TEXT,
    jkt            TEXT,
    CONSTRAINT devices_owner_slug UNIQUE (owner_id, slug)
);
-- (owner_id, slug) also serves lookups by owner.

CREATE TABLE device_locations (
    seq          BIGSERIAL PRIMARY KEY,  -- insertion order, for changes within one millisecond
    device_id    TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    location     TEXT,
    effective_at BIGINT NOT NULL
);
CREATE INDEX device_locations_device ON device_locations(device_id, effective_at);

ALTER TABLE device_grants ADD COLUMN device_slug TEXT;
ALTER TABLE device_grants ADD COLUMN device_location TEXT;
ALTER TABLE device_grants ADD COLUMN device_platform TEXT NOT NULL DEFAULT '';
ALTER TABLE device_grants ADD COLUMN device_client_version TEXT NOT NULL DEFAULT '';
ALTER TABLE device_grants ADD COLUMN device_public_jwk TEXT;
ALTER TABLE device_grants ADD COLUMN device_jkt TEXT;
ALTER TABLE device_grants ADD COLUMN device_id TEXT;

ALTER TABLE token_families ADD COLUMN device_id TEXT REFERENCES devices(id) ON DELETE CASCADE;
ALTER TABLE token_families ADD COLUMN jkt TEXT;
CREATE INDEX token_families_device ON token_families(device_id);

CREATE TABLE enrollment_keys (
    id         TEXT PRIMARY KEY,
    key_hash   TEXT NOT NULL UNIQUE,
    owner_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    reusable   BOOLEAN NOT NULL,
    expires_at BIGINT NOT NULL,
    tag        TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    uses       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX enrollment_keys_owner ON enrollment_keys(owner_id);
