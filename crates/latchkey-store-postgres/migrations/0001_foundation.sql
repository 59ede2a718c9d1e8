-- Accounts, sessions, apps, device grants, tokens, signing keys and the audit chain.
-- Mirrors the SQLite backend's 0001_foundation.sql table for table and column for column.
-- Times are milliseconds since the Unix epoch (BIGINT). Secrets are stored only as SHA-256 hex.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin      BOOLEAN NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires ON sessions(expires_at);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE apps (
    client_id     TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    kind          TEXT NOT NULL,
    secret_hash   TEXT,
    grant_types   TEXT NOT NULL,   -- space separated
    redirect_uris TEXT NOT NULL,   -- space separated
    created_at    BIGINT NOT NULL
);

CREATE TABLE device_grants (
    id                   TEXT PRIMARY KEY,
    client_id            TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    scope                TEXT NOT NULL,
    device_code_hash     TEXT NOT NULL UNIQUE,
    user_code_hash       TEXT NOT NULL UNIQUE,
    status               TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    expires_at           BIGINT NOT NULL,
    interval_secs        BIGINT NOT NULL,
    last_polled_at       BIGINT,
    requester_ip         TEXT NOT NULL,
    requester_user_agent TEXT NOT NULL,
    device_name          TEXT,
    user_id              TEXT REFERENCES users(id) ON DELETE CASCADE,
    decided_at           BIGINT
);
CREATE INDEX device_grants_expires ON device_grants(expires_at);
-- PostgreSQL does not index referencing columns by itself; cascades would scan.
CREATE INDEX device_grants_client ON device_grants(client_id);
CREATE INDEX device_grants_user ON device_grants(user_id);

CREATE TABLE token_families (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    auth_time  BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX token_families_user ON token_families(user_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL REFERENCES token_families(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    rotated_at BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens(expires_at);

CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY,
    private_pkcs8 BYTEA NOT NULL,
    public_key    BYTEA NOT NULL,
    created_at    BIGINT NOT NULL,
    retired_at    BIGINT
);

CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    actor     TEXT,
    subject   TEXT,
    detail    TEXT NOT NULL,
    prev_hash BYTEA NOT NULL,
    hash      BYTEA NOT NULL
);

-- The single row every append locks, so the chain stays linear across replicas.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash BYTEA NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));
