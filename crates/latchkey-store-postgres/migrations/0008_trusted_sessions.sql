-- Mirrors the SQLite backend's 0008_trusted_sessions.sql.
-- Trusted devices and automatic sessions.
--
-- Keys and signatures are base64url text. Nothing here holds a session key:
-- an invitation carries it sealed (HPKE) to one member's key, and relayed
-- messages are ciphertext the server cannot open.

-- A device's key replacements. `signature` is the old key's over the new one
-- (NULL: no chain, so trust in the old key does not carry over).
CREATE TABLE device_key_rotations (
    device_id  TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    old_key    TEXT NOT NULL,
    new_key    TEXT NOT NULL,
    signature  TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, old_key)
);

-- The X25519 key a device's sessions are sealed to, signed by the device key `signed_by`.
CREATE TABLE device_session_keys (
    device_id   TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    protocol    BIGINT NOT NULL,
    session_key TEXT NOT NULL,
    signed_by   TEXT NOT NULL,
    signature   TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Trust statements, each signed on the truster's machine.
CREATE TABLE device_trusts (
    truster_id  TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    trustee_id  TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    truster_key TEXT NOT NULL,
    trustee_key TEXT NOT NULL,
    issued_at   BIGINT NOT NULL,
    signature   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (truster_id, trustee_id)
);
CREATE INDEX device_trusts_trustee ON device_trusts (trustee_id);

CREATE TABLE trusted_sessions (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    creator_id   TEXT NOT NULL,
    epoch        BIGINT NOT NULL,
    protocol     BIGINT NOT NULL,
    rekey_needed BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    closed_at    BIGINT,
    pruned_before BIGINT NOT NULL DEFAULT 0 -- the oldest message kept (older ones were dropped)
);
CREATE INDEX trusted_sessions_user ON trusted_sessions (user_id);

-- status: invited | joined | left | removed. joined_epoch: the key generation it last joined at.
-- last_seq: the member's last message number (kept here, as messages are dropped from the log).
CREATE TABLE trusted_session_members (
    session_id   TEXT NOT NULL REFERENCES trusted_sessions(id) ON DELETE CASCADE,
    device_id    TEXT NOT NULL,
    status       TEXT NOT NULL,
    joined_epoch BIGINT,
    last_seq     BIGINT NOT NULL DEFAULT 0, -- the member's own message counter
    changed_at   BIGINT NOT NULL,
    PRIMARY KEY (session_id, device_id)
);
CREATE INDEX trusted_session_members_device ON trusted_session_members (device_id);

-- Signed invitations, relayed as sent. Also the replay store: a nonce is
-- stored once (kept with its session), and `used_at` is set once.
CREATE TABLE session_invitations (
    nonce      TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES trusted_sessions(id) ON DELETE CASCADE,
    recipient  TEXT NOT NULL,
    epoch      BIGINT NOT NULL,
    body       TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX session_invitations_recipient ON session_invitations (recipient);

-- The relay log of one user's sessions: messages (sender, seq, body) and
-- session events (event, device). `pos` comes from the user's
-- `session_log_heads` row, held for the transaction, so positions are handed
-- out in commit order and a channel resuming after one never skips another.
CREATE TABLE session_log_heads (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    pos     BIGINT NOT NULL
);
CREATE TABLE session_log (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    pos        BIGINT NOT NULL,
    session_id TEXT NOT NULL REFERENCES trusted_sessions(id) ON DELETE CASCADE,
    epoch      BIGINT NOT NULL,
    sender     TEXT,
    seq        BIGINT,
    body       TEXT,
    event      TEXT,
    device     TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, pos)
);
CREATE INDEX session_log_session ON session_log (session_id, pos);

-- Open channels: a device is online while it holds one (seen within the lease).
CREATE TABLE device_channels (
    id        TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    opened_at BIGINT NOT NULL,
    seen_at   BIGINT NOT NULL
);
CREATE INDEX device_channels_device ON device_channels (device_id);
