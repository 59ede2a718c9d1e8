-- Devices, their location history, enrollment keys, and DPoP binding of grants and token families.

CREATE TABLE devices (
    id             TEXT PRIMARY KEY,
    owner_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    display_name   TEXT NOT NULL,
    slug           TEXT NOT NULL,
    location       TEXT,            -- NULL: the user chose to give it later
    platform       TEXT NOT NULL,
    client_version TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    last_seen_at   INTEGER,
    status         TEXT NOT NULL,
    revoked_at     INTEGER,
    public_jwk     TEXT,
    jkt            TEXT,
    UNIQUE (owner_id, slug)
);

CREATE TABLE device_locations (
    device_id    TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    location     TEXT,
    effective_at INTEGER NOT NULL
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
    reusable   INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    tag        TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    uses       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX enrollment_keys_owner ON enrollment_keys(owner_id);
