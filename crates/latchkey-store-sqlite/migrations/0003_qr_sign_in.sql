-- QR cross-device sign-in: the per-app switch and URL, and the pairings themselves.

ALTER TABLE apps ADD COLUMN app_url TEXT;
ALTER TABLE apps ADD COLUMN qr_sign_in INTEGER NOT NULL DEFAULT 0;

CREATE TABLE pairings (
    id                  TEXT PRIMARY KEY,
    client_id           TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    desktop_secret_hash TEXT NOT NULL UNIQUE,
    phone_code_hash     TEXT NOT NULL UNIQUE,
    status              TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    expires_at          INTEGER NOT NULL,
    requester_ip        TEXT NOT NULL,
    requester_user_agent TEXT NOT NULL,
    return_to           TEXT,
    user_id             TEXT REFERENCES users(id) ON DELETE CASCADE,
    decided_at          INTEGER
);
CREATE INDEX pairings_expires ON pairings(expires_at);

CREATE INDEX audit_log_actor ON audit_log(actor, seq);
CREATE INDEX audit_log_subject ON audit_log(subject, seq);
CREATE INDEX audit_log_kind ON audit_log(kind, seq);
