//! The SQL of trusted devices and automatic sessions, under the rules of
//! [`crate::sql`] (placeholders first used in order, no backend-only syntax).

// ---- keys and trust ----

/// A device's key replacements, oldest first.
pub const ROTATIONS: &str =
    "SELECT old_key, new_key, signature FROM device_key_rotations WHERE device_id = $1 ORDER BY created_at, old_key";
/// Records a key replacement.
pub const INSERT_ROTATION: &str =
    "INSERT INTO device_key_rotations (device_id, old_key, new_key, signature, created_at)
     VALUES ($1, $2, $3, $4, $5)";
/// Replaces a device's key.
pub const SET_DEVICE_KEY: &str = "UPDATE devices SET public_jwk = $1, jkt = $2 WHERE id = $3";
/// A device's session key.
pub const SESSION_KEY: &str =
    "SELECT protocol, session_key, signed_by, signature FROM device_session_keys WHERE device_id = $1";
/// Publishes (or replaces) a device's session key.
pub const UPSERT_SESSION_KEY: &str =
    "INSERT INTO device_session_keys (device_id, protocol, session_key, signed_by, signature, created_at)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (device_id) DO UPDATE SET protocol = excluded.protocol, session_key = excluded.session_key,
       signed_by = excluded.signed_by, signature = excluded.signature, created_at = excluded.created_at";
/// Stores (or replaces) a trust statement.
pub const UPSERT_TRUST: &str =
    "INSERT INTO device_trusts (truster_id, trustee_id, truster_key, trustee_key, issued_at, signature, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (truster_id, trustee_id) DO UPDATE SET truster_key = excluded.truster_key,
       trustee_key = excluded.trustee_key, issued_at = excluded.issued_at, signature = excluded.signature,
       created_at = excluded.created_at";
/// Removes a trust statement.
pub const DELETE_TRUST: &str = "DELETE FROM device_trusts WHERE truster_id = $1 AND trustee_id = $2";
/// Removes every statement by or about a device.
pub const DELETE_TRUSTS_OF_DEVICE: &str = "DELETE FROM device_trusts WHERE truster_id = $1 OR trustee_id = $1";
/// Every statement between one user's devices, oldest first, with names.
pub const TRUSTS_OF_USER: &str = "SELECT t.truster_id, a.display_name, t.trustee_id, b.display_name, t.truster_key,
       t.trustee_key, t.created_at
     FROM device_trusts t JOIN devices a ON a.id = t.truster_id JOIN devices b ON b.id = t.trustee_id
     WHERE a.owner_id = $1 ORDER BY t.created_at, t.truster_id, t.trustee_id";
/// How many channels a device holds, seen since `$2`.
pub const CHANNEL_COUNT: &str = "SELECT COUNT(*) FROM device_channels WHERE device_id = $1 AND seen_at >= $2";
/// Opens a channel.
pub const INSERT_CHANNEL: &str =
    "INSERT INTO device_channels (id, device_id, opened_at, seen_at) VALUES ($1, $2, $3, $3)";
/// Marks a channel seen.
pub const TOUCH_CHANNEL: &str = "UPDATE device_channels SET seen_at = $1 WHERE id = $2";
/// Closes a channel.
pub const DELETE_CHANNEL: &str = "DELETE FROM device_channels WHERE id = $1";

// ---- sessions ----

/// Columns of `trusted_sessions`, as [`crate::rows::trusted_session`] reads them.
macro_rules! session_columns {
    () => {
        "id, user_id, creator_id, epoch, protocol, rekey_needed, created_at, expires_at, closed_at"
    };
}

/// Stores a new session.
pub const INSERT_SESSION: &str = "INSERT INTO trusted_sessions (id, user_id, creator_id, epoch, protocol, rekey_needed,
       created_at, expires_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $7)";
/// One session; the backend may hold the row.
pub const SESSION: &str = concat!("SELECT ", session_columns!(), " FROM trusted_sessions WHERE id = $1");
/// The open sessions a device is a current member of, newest first.
pub const SESSIONS_OF_DEVICE: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM trusted_sessions WHERE closed_at IS NULL AND expires_at > $1 AND id IN
       (SELECT session_id FROM trusted_session_members WHERE device_id = $2 AND status IN ('invited', 'joined'))
     ORDER BY created_at DESC, id"
);
/// Sets a session's key generation and whether a new key is needed.
pub const SET_SESSION_EPOCH: &str = "UPDATE trusted_sessions SET epoch = $1, rekey_needed = $2 WHERE id = $3";
/// Closes a session.
pub const CLOSE_SESSION: &str = "UPDATE trusted_sessions SET closed_at = $1 WHERE id = $2 AND closed_at IS NULL";
/// Adds a member.
pub const INSERT_MEMBER: &str = "INSERT INTO trusted_session_members (session_id, device_id, status, joined_epoch,
       changed_at) VALUES ($1, $2, $3, $4, $5)";
/// A session's members, by device ID.
pub const MEMBERS: &str =
    "SELECT device_id, status, joined_epoch FROM trusted_session_members WHERE session_id = $1 ORDER BY device_id";
/// Changes a member's status (and the generation it joined at).
pub const SET_MEMBER: &str =
    "UPDATE trusted_session_members SET status = $1, joined_epoch = $2, changed_at = $3 WHERE session_id = $4
       AND device_id = $5";
/// Open sessions in which a device is a current member (to remove it).
pub const OPEN_SESSIONS_WITH_MEMBER: &str = "SELECT s.id FROM trusted_sessions s JOIN trusted_session_members m
       ON m.session_id = s.id
     WHERE m.device_id = $1 AND m.status IN ('invited', 'joined') AND s.closed_at IS NULL ORDER BY s.id";
/// How many open sessions the device is invited to and has not joined yet.
pub const INVITED_COUNT: &str =
    "SELECT COUNT(*) FROM trusted_session_members m JOIN trusted_sessions s ON s.id = m.session_id
     WHERE m.device_id = $1 AND m.status = 'invited' AND s.closed_at IS NULL";
/// Stores an invitation; a nonce is refused while its session is kept (a day after it closes), and an
/// invitation is refused after its few minutes anyway.
pub const INSERT_INVITATION: &str =
    "INSERT INTO session_invitations (nonce, session_id, recipient, epoch, body, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6)";
/// One invitation by nonce: session, recipient, epoch, expiry, used.
pub const INVITATION: &str =
    "SELECT session_id, recipient, epoch, expires_at, used_at FROM session_invitations WHERE nonce = $1";
/// Uses an invitation once.
pub const USE_INVITATION: &str = "UPDATE session_invitations SET used_at = $1 WHERE nonce = $2 AND used_at IS NULL";
/// A device's invitations still to accept: unused, unexpired, at their open session's current key, for a current member.
pub const PENDING_INVITATIONS: &str = "SELECT i.body FROM session_invitations i
     JOIN trusted_sessions s ON s.id = i.session_id
     JOIN trusted_session_members m ON m.session_id = i.session_id AND m.device_id = i.recipient
     WHERE i.recipient = $1 AND i.used_at IS NULL AND i.expires_at > $2 AND s.closed_at IS NULL
       AND s.expires_at > $2 AND i.epoch = s.epoch AND m.status IN ('invited', 'joined')
     ORDER BY i.expires_at, i.nonce";
/// Whether a member has an unused, unexpired invitation at the session's current key.
pub const HAS_PENDING_INVITATION: &str = "SELECT COUNT(*) FROM session_invitations i
     JOIN trusted_sessions s ON s.id = i.session_id
     WHERE i.session_id = $1 AND i.recipient = $2 AND i.used_at IS NULL AND i.expires_at > $3 AND i.epoch = s.epoch";

// ---- the relay log ----

/// Creates a user's log head if missing.
pub const ENSURE_LOG_HEAD: &str =
    "INSERT INTO session_log_heads (user_id, pos) VALUES ($1, 0) ON CONFLICT (user_id) DO NOTHING";
/// The last position handed out in a user's log; the backend may hold the row.
pub const LOG_HEAD: &str = "SELECT pos FROM session_log_heads WHERE user_id = $1";
/// Stores the last position handed out.
pub const SET_LOG_HEAD: &str = "UPDATE session_log_heads SET pos = $1 WHERE user_id = $2";
/// Appends to a user's log.
pub const INSERT_LOG: &str =
    "INSERT INTO session_log (user_id, pos, session_id, epoch, sender, seq, body, event, device,
       created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
/// A member's last message number (it runs on across key generations).
pub const MEMBER_SEQ: &str = "SELECT last_seq FROM trusted_session_members WHERE session_id = $1 AND device_id = $2";
/// Stores a member's last message number.
pub const SET_MEMBER_SEQ: &str =
    "UPDATE trusted_session_members SET last_seq = $1 WHERE session_id = $2 AND device_id = $3";
/// Records the oldest message a session still keeps, after a prune.
pub const SET_PRUNED: &str = "UPDATE trusted_sessions SET pruned_before =
       (SELECT COALESCE(MIN(pos), 0) FROM session_log WHERE session_id = $1 AND sender IS NOT NULL) WHERE id = $1";
/// Drops a session's messages beyond the newest `$2`.
pub const PRUNE_LOG: &str = "DELETE FROM session_log WHERE session_id = $1 AND sender IS NOT NULL AND pos <
       (SELECT COALESCE(MIN(pos), 0) FROM (SELECT pos FROM session_log WHERE session_id = $1 AND sender IS NOT NULL
         ORDER BY pos DESC LIMIT $2) AS kept)";
/// What a device may see of its user's log after `$2`: messages of sessions it
/// is a joined member of, and events of sessions it is or was a member of.
pub const LOG_AFTER: &str = "SELECT l.pos, l.session_id, l.epoch, l.sender, l.seq, l.body, l.event, l.device
     FROM session_log l JOIN trusted_session_members m ON m.session_id = l.session_id AND m.device_id = $1
     WHERE l.user_id = $2 AND l.pos > $3 AND (l.event IS NOT NULL OR (m.status = 'joined' AND l.sender <> $1))
     ORDER BY l.pos LIMIT $4";
/// The newest point before which messages were dropped, over the sessions a device has joined.
pub const CHANNEL_GAP: &str = "SELECT COALESCE(MAX(s.pruned_before), 0) FROM trusted_sessions s
     JOIN trusted_session_members m ON m.session_id = s.id WHERE m.device_id = $1 AND m.status = 'joined'";

// ---- housekeeping ----

/// Open sessions past their end, oldest first, at most `$2`.
pub const EXPIRED_SESSIONS: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM trusted_sessions WHERE closed_at IS NULL AND expires_at <= $1 ORDER BY expires_at, id LIMIT $2"
);
/// Deletes sessions closed before `$1` (their invitations and log go with them).
pub const SWEEP_OLD_SESSIONS: &str = "DELETE FROM trusted_sessions WHERE closed_at IS NOT NULL AND closed_at < $1";
/// Deletes channels not seen since `$1` (a replica that stopped without closing them).
pub const SWEEP_CHANNELS: &str = "DELETE FROM device_channels WHERE seen_at < $1";

/// Every statement above, for the placeholder-order test.
pub const ALL: [&str; 41] = [
    ROTATIONS,
    INSERT_ROTATION,
    SET_DEVICE_KEY,
    SESSION_KEY,
    UPSERT_SESSION_KEY,
    UPSERT_TRUST,
    DELETE_TRUST,
    DELETE_TRUSTS_OF_DEVICE,
    TRUSTS_OF_USER,
    CHANNEL_COUNT,
    INSERT_CHANNEL,
    TOUCH_CHANNEL,
    DELETE_CHANNEL,
    INSERT_SESSION,
    SESSION,
    SESSIONS_OF_DEVICE,
    SET_SESSION_EPOCH,
    CLOSE_SESSION,
    INSERT_MEMBER,
    MEMBERS,
    SET_MEMBER,
    OPEN_SESSIONS_WITH_MEMBER,
    INVITED_COUNT,
    INSERT_INVITATION,
    INVITATION,
    USE_INVITATION,
    PENDING_INVITATIONS,
    HAS_PENDING_INVITATION,
    ENSURE_LOG_HEAD,
    LOG_HEAD,
    SET_LOG_HEAD,
    INSERT_LOG,
    MEMBER_SEQ,
    SET_MEMBER_SEQ,
    SET_PRUNED,
    PRUNE_LOG,
    LOG_AFTER,
    CHANNEL_GAP,
    EXPIRED_SESSIONS,
    SWEEP_OLD_SESSIONS,
    SWEEP_CHANNELS,
];
