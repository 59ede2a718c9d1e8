-- Mirrors the SQLite backend's 0004_accounts.sql.
ALTER TABLE users ADD COLUMN disabled_at BIGINT;
ALTER TABLE users ADD COLUMN locked_until BIGINT;
