-- Passkeys (WebAuthn). Each passkey keeps webauthn-rs's serialised credential
-- (public key, sign counter, backup state), updated after every sign-in. The
-- ceremonies table holds a registration's or sign-in's challenge state under
-- the hash of an ID only the browser holds (a cookie), for a few minutes and
-- for one answer, so any replica can finish what another started. Sessions
-- remember how they signed in (RFC 8176 amr), for the ID tokens they lead to.
-- Numbered 14: migration 13 belongs to another branch; the runner applies each
-- listed version that is missing, so the gap is harmless.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';

CREATE TABLE passkeys (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,
    passkey       TEXT NOT NULL,
    name          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX passkeys_user ON passkeys(user_id);

CREATE TABLE webauthn_ceremonies (
    id_hash    TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    state      TEXT NOT NULL,
    user_id    TEXT REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX webauthn_ceremonies_expires ON webauthn_ceremonies(expires_at);
