-- Multi-machine sync, faster: an event's observers move into its own row, so a
-- second device's capture updates the row it had to read anyway instead of
-- inserting into another table keyed by a random hash.
--
-- `observers` is JSON text: [[device_id, first_seen_ms], ...], earliest first.
ALTER TABLE events ADD COLUMN observers TEXT NOT NULL DEFAULT '[]';
UPDATE events e SET observers = o.list
FROM (SELECT event_id,
             json_agg(json_build_array(device_id, first_seen_at) ORDER BY first_seen_at, device_id)::text AS list
      FROM event_observers GROUP BY event_id) o
WHERE o.event_id = e.id;
ALTER TABLE events ALTER COLUMN observers DROP DEFAULT;
DROP TABLE event_observers;
