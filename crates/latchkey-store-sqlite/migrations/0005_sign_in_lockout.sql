-- Lock after repeated wrong passwords: the account's current run of failures,
-- and each network's last failure per account (a correct password from a
-- network with no recent failure may lift a lock).
ALTER TABLE users ADD COLUMN failed_sign_ins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN first_failure_at INTEGER;
CREATE TABLE sign_in_failures (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    network TEXT NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (user_id, network)
);
