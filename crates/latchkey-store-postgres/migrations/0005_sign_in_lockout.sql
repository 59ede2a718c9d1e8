-- Mirrors the SQLite backend's 0005_sign_in_lockout.sql.
ALTER TABLE users ADD COLUMN failed_sign_ins BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN first_failure_at BIGINT;
CREATE TABLE sign_in_failures (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    network TEXT NOT NULL,
    at      BIGINT NOT NULL,
    PRIMARY KEY (user_id, network)
);
