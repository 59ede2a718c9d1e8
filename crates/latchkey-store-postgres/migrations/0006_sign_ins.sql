-- Mirrors the SQLite backend's 0006_sign_ins.sql (the indexes by user exist here since 0001).
-- Sign-ins a user can see and end, and apps that require DPoP.
--
-- Sessions (browser sign-ins to Latchkey) get an ID that can be shown and
-- revoked without revealing the token's hash, and where they started.
-- Token families record where their sign-in started too (the desktop's IP
-- and browser for a QR sign-in, the device's for a device login).
ALTER TABLE sessions ADD COLUMN id TEXT;
ALTER TABLE sessions ADD COLUMN ip TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
UPDATE sessions SET id = substr(token_hash, 1, 32) WHERE id IS NULL;
CREATE UNIQUE INDEX sessions_id ON sessions(id);

ALTER TABLE token_families ADD COLUMN ip TEXT;
ALTER TABLE token_families ADD COLUMN user_agent TEXT;

ALTER TABLE apps ADD COLUMN require_dpop BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE apps SET require_dpop = TRUE WHERE client_id = 'latchkey-cli';
