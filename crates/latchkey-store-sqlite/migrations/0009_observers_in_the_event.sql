-- Multi-machine sync, faster: an event's observers move into its own row.
--
-- Why: IDs are hashes, so every B-tree keyed by one takes a random page write
-- per capture. Before, a new event wrote two such trees (the table's ID index
-- and the observers table); now it writes one, the compact ID index, while the
-- row itself is appended in insertion order. A second device's capture
-- rewrites the row it already had to read instead of inserting elsewhere.
-- The stream order (`seq`) and its index are unchanged.
--
-- `observers` is JSON: [[device_id, first_seen_ms], ...], earliest first.
-- Children are rebuilt before their parent is dropped, so no cascade fires.
CREATE TABLE events_v2 (
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
    merged_into TEXT,                 -- set when merged into a larger interval event
    observers   TEXT NOT NULL
);

INSERT INTO events_v2 (id, user_id, client_id, kind, series, identity, start_at, end_at, created_at, seq, merged_into,
                       observers)
SELECT e.id, e.user_id, e.client_id, e.kind, e.series, e.identity, e.start_at, e.end_at, e.created_at, e.seq,
       e.merged_into,
       COALESCE((SELECT json_group_array(json_array(o.device_id, o.first_seen_at))
                 FROM (SELECT device_id, first_seen_at FROM event_observers WHERE event_id = e.id
                       ORDER BY first_seen_at, device_id) o), '[]')
FROM events e;

CREATE TABLE event_parts_v2 (
    event_id  TEXT NOT NULL REFERENCES events_v2(id) ON DELETE CASCADE,
    device_id TEXT NOT NULL,
    start_at  INTEGER NOT NULL,
    end_at    INTEGER NOT NULL,
    PRIMARY KEY (event_id, device_id, start_at, end_at)
) WITHOUT ROWID;
INSERT INTO event_parts_v2 SELECT event_id, device_id, start_at, end_at FROM event_parts;

DROP TABLE event_observers;
DROP TABLE event_parts;
DROP TABLE events;
-- Renaming the parent also renames the children's references to it.
ALTER TABLE events_v2 RENAME TO events;
ALTER TABLE event_parts_v2 RENAME TO event_parts;

CREATE UNIQUE INDEX events_user_seq ON events(user_id, seq);
-- Only interval events are looked up by series (an exact event's series is its ID).
CREATE INDEX events_series ON events(series) WHERE merged_into IS NULL AND start_at IS NOT NULL;
CREATE INDEX events_created ON events(created_at);
