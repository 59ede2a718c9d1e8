-- Accounts, sessions, apps, device grants, tokens, signing keys and the audit chain.
-- Times are milliseconds since the Unix epoch. Secrets are stored only as SHA-256 hex.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin      INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_expires ON sessions(expires_at);

CREATE TABLE apps (
    client_id     TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    kind          TEXT NOT NULL,
    secret_hash   TEXT,
    grant_types   TEXT NOT NULL,   -- space separated
    redirect_uris TEXT NOT NULL,   -- space separated
    created_at    INTEGER NOT NULL
);

CREATE TABLE device_grants (
    id                   TEXT PRIMARY KEY,
    client_id            TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    scope                TEXT NOT NULL,
    device_code_hash     TEXT NOT NULL UNIQUE,
    user_code_hash       TEXT NOT NULL UNIQUE,
    status               TEXT NOT NULL,
    created_at           INTEGER NOT NULL,
    expires_at           INTEGER NOT NULL,
    interval_secs        INTEGER NOT NULL,
    last_polled_at       INTEGER,
    requester_ip         TEXT NOT NULL,
    requester_user_agent TEXT NOT NULL,
    device_name          TEXT,
    user_id              TEXT REFERENCES users(id) ON DELETE CASCADE,
    decided_at           INTEGER
);
CREATE INDEX device_grants_expires ON device_grants(expires_at);

CREATE TABLE token_families (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    auth_time  INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL REFERENCES token_families(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    rotated_at INTEGER
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens(expires_at);

CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY,
    private_pkcs8 BLOB NOT NULL,
    public_key    BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    retired_at    INTEGER
);

CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    actor     TEXT,
    subject   TEXT,
    detail    TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash      BLOB NOT NULL
);

CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash BLOB NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, zeroblob(32));
