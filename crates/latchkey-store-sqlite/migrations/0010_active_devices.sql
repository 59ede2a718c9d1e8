-- Device registration in constant time: counting an owner's active devices
-- (the cap) and finding their newest device with a key read only the active
-- ones through this index, not every device the owner ever had. A long-lived
-- account collects revoked devices without bound; an active one is capped.
CREATE INDEX devices_active_owner ON devices(owner_id) WHERE status = 'active';
