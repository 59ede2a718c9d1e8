-- Accounts that can be stopped: disabled by an admin, or locked until a moment.
ALTER TABLE users ADD COLUMN disabled_at INTEGER;
ALTER TABLE users ADD COLUMN locked_until INTEGER;
