-- Web sign-in (OpenID Connect authorization code with PKCE): the codes, kept
-- only as hashes and for an hour after expiry so that a replay is still
-- recognised and what the code issued revoked; and each person's standing
-- consent per app, which they can withdraw.
CREATE TABLE authorization_codes (
    code_hash      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    code_challenge TEXT NOT NULL,
    auth_time      INTEGER NOT NULL,
    amr            TEXT NOT NULL,
    ip             TEXT NOT NULL,
    user_agent     TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER,
    family_id      TEXT
);
CREATE INDEX authorization_codes_expires ON authorization_codes(expires_at);

CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- What an app registers for web sign-in besides its redirect URIs: where
-- RP-initiated logout may send people back to, and how its ID tokens are signed.
ALTER TABLE apps ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN id_token_alg TEXT NOT NULL DEFAULT 'EdDSA';

-- QR sign-in is also a way to sign in to Latchkey on the web sign-in page: such
-- a pairing names the authorization request it continues in the desktop's
-- browser, which ends with a code redirect; no token travels in a URL.
ALTER TABLE pairings ADD COLUMN continues TEXT;
