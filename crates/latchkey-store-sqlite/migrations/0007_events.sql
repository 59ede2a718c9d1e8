-- Multi-machine sync: event kinds declared by apps, each user's events stored
-- once by canonical ID, the devices that observed them, and the parts of
-- interval events each device captured.
--
-- `seq` orders a user's stream: every change to an event (created, observed by
-- another device, extended, merged away) gives it the next number from the
-- user's `event_heads` row, which a batch holds for its whole transaction, so
-- numbers are handed out in commit order and a pull never skips one.
CREATE TABLE event_kinds (
    client_id      TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    spec           TEXT NOT NULL,     -- identity fields, precision and merge policy, as JSON
    retention_secs INTEGER,           -- NULL: kept until the user is deleted
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (client_id, name)
);

CREATE TABLE event_heads (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL
);

CREATE TABLE events (
    id          TEXT PRIMARY KEY,     -- the canonical event ID
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    series      TEXT NOT NULL,        -- the identity's hash; an interval series has one event per merged interval
    identity    TEXT NOT NULL,        -- canonical JSON
    start_at    INTEGER,
    end_at      INTEGER,
    created_at  INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    merged_into TEXT                  -- set when merged into a larger interval event
);
CREATE UNIQUE INDEX events_user_seq ON events(user_id, seq);
-- Only interval events are looked up by series (an exact event's series is its ID).
CREATE INDEX events_series ON events(series) WHERE merged_into IS NULL AND start_at IS NOT NULL;
CREATE INDEX events_created ON events(created_at);

CREATE TABLE event_observers (
    event_id      TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    device_id     TEXT NOT NULL,
    first_seen_at INTEGER NOT NULL,
    PRIMARY KEY (event_id, device_id)
) WITHOUT ROWID;  -- one B-tree, keyed as it is looked up

CREATE TABLE event_parts (
    event_id  TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    device_id TEXT NOT NULL,
    start_at  INTEGER NOT NULL,
    end_at    INTEGER NOT NULL,
    PRIMARY KEY (event_id, device_id, start_at, end_at)
) WITHOUT ROWID;
