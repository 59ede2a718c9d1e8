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
CREATE INDEX sessions_user ON sessions(user_id);

ALTER TABLE token_families ADD COLUMN ip TEXT;
ALTER TABLE token_families ADD COLUMN user_agent TEXT;
CREATE INDEX token_families_user ON token_families(user_id, created_at);

ALTER TABLE apps ADD COLUMN require_dpop INTEGER NOT NULL DEFAULT 0;
UPDATE apps SET require_dpop = 1 WHERE client_id = 'latchkey-cli';
