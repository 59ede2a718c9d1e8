-- QR cross-device sign-in: the per-app switch and URL, the pairings themselves,
-- and indexes for the audit page's filters (newest first by actor, subject or kind).
-- Mirrors the SQLite backend's 0003_qr_sign_in.sql table for table and column for column.
-- Transitions lock the pairing row (FOR UPDATE) and update it on its status, so
-- concurrent callers on any replica race to exactly one winner.

ALTER TABLE apps ADD COLUMN app_url TEXT;
ALTER TABLE apps ADD COLUMN qr_sign_in BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE pairings (
    id                   TEXT PRIMARY KEY,
    client_id            TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    desktop_secret_hash  TEXT NOT NULL UNIQUE,
    phone_code_hash      TEXT NOT NULL UNIQUE,
    status               TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    expires_at           BIGINT NOT NULL,
    requester_ip         TEXT NOT NULL,
    requester_user_agent TEXT NOT NULL,
    return_to            TEXT,
    user_id              TEXT REFERENCES users(id) ON DELETE CASCADE,
    decided_at           BIGINT
);
CREATE INDEX pairings_expires ON pairings(expires_at);
-- PostgreSQL does not index referencing columns by itself; cascades would scan.
CREATE INDEX pairings_client ON pairings(client_id);
CREATE INDEX pairings_user ON pairings(user_id);

CREATE INDEX audit_log_actor ON audit_log(actor, seq);
CREATE INDEX audit_log_subject ON audit_log(subject, seq);
CREATE INDEX audit_log_kind ON audit_log(kind, seq);
