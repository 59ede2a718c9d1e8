//! The SQL both backends run, written once.
//!
//! Placeholders are `$1`, `$2`, … as PostgreSQL numbers them. SQLite reads
//! `$N` as a named parameter and numbers parameters in order of first
//! appearance, so every statement here uses its parameters first in
//! increasing order (a test checks it); then positional binding means the
//! same thing on both. No PostgreSQL-only syntax: `CAST(… AS TEXT)` rather
//! than `::TEXT`. Row locks are added by the backend that takes them.
//!
//! The column lists name what [`crate::rows`] decodes, in that order.

/// Columns of `device_grants`, as [`crate::rows::device_grant`] reads them.
macro_rules! grant_columns {
    () => {
        "id, client_id, scope, status, created_at, expires_at, interval_secs, last_polled_at,
         requester_ip, requester_user_agent, device_name, user_id, decided_at,
         device_slug, device_location, device_platform, device_client_version, device_public_jwk, device_jkt, device_id"
    };
}

/// Columns of `devices`, as [`crate::rows::device`] reads them.
macro_rules! device_columns {
    () => {
        "id, owner_id, display_name, slug, location, platform, client_version, created_at,
         last_seen_at, status, revoked_at, public_jwk, jkt"
    };
}

/// Columns of `pairings`, as [`crate::rows::pairing`] reads them.
macro_rules! pairing_columns {
    () => {
        "id, client_id, status, created_at, expires_at, requester_ip, requester_user_agent, user_id, decided_at, continues"
    };
}

/// Columns of `users` (as `u`), as [`crate::rows::user`] reads them.
macro_rules! user_columns {
    () => {
        "u.id, u.username, u.password_hash, u.is_admin, u.created_at, u.disabled_at, u.locked_until"
    };
}

/// Columns of `apps`, as [`crate::rows::app`] reads them.
macro_rules! app_columns {
    () => {
        "client_id, display_name, kind, secret_hash, grant_types, redirect_uris, created_at, app_url, qr_sign_in,
         require_dpop, post_logout_redirect_uris, id_token_alg"
    };
}

/// Columns of an enrollment key joined with its owner, as [`crate::rows::enrollment_key`] reads them.
macro_rules! enrollment_key_columns {
    () => {
        "k.id, k.owner_id, u.username, k.reusable, k.expires_at, k.tag, k.created_by, k.created_at, k.revoked_at, k.uses"
    };
}

// ---- users, sessions, apps ----

/// A user's sign-in name.
pub const USERNAME: &str = "SELECT username FROM users WHERE id = $1";
/// Creates a user.
pub const INSERT_USER: &str =
    "INSERT INTO users (id, username, password_hash, is_admin, created_at) VALUES ($1, $2, $3, $4, $5)";
/// A user by sign-in name.
pub const USER_BY_NAME: &str = concat!("SELECT ", user_columns!(), " FROM users u WHERE u.username = $1");
/// How many users exist.
pub const COUNT_USERS: &str = "SELECT COUNT(*) FROM users";
/// An account's status; the backend may hold the row against a concurrent change.
pub const ACCOUNT_STATUS: &str = "SELECT disabled_at, locked_until FROM users WHERE id = $1";
/// Every account, by name.
pub const USERS: &str = concat!("SELECT ", user_columns!(), " FROM users u ORDER BY u.username");
/// A user by ID.
pub const USER_BY_ID: &str = concat!("SELECT ", user_columns!(), " FROM users u WHERE u.id = $1");
/// Disables (a time) or enables (NULL) an account.
pub const SET_USER_DISABLED: &str = "UPDATE users SET disabled_at = $1 WHERE id = $2";
/// An account's current run of wrong passwords.
pub const FAILURE_RUN: &str = "SELECT failed_sign_ins, first_failure_at FROM users WHERE id = $1";
/// Stores an account's run of wrong passwords.
pub const SET_FAILURE_RUN: &str = "UPDATE users SET failed_sign_ins = $1, first_failure_at = $2 WHERE id = $3";
/// Locks an account until a time, or lifts the lock (NULL).
pub const SET_LOCKED_UNTIL: &str = "UPDATE users SET locked_until = $1 WHERE id = $2";
/// Records a network's latest wrong password for an account.
pub const ADD_NETWORK_FAILURE: &str = "INSERT INTO sign_in_failures (user_id, network, at) VALUES ($1, $2, $3)
     ON CONFLICT (user_id, network) DO UPDATE SET at = excluded.at";
/// Forgets an account's network failures older than a time.
pub const PRUNE_NETWORK_FAILURES: &str = "DELETE FROM sign_in_failures WHERE user_id = $1 AND at < $2";
/// When a network's latest wrong password for an account came.
pub const NETWORK_FAILED_AT: &str = "SELECT at FROM sign_in_failures WHERE user_id = $1 AND network = $2";
/// Forgets every network failure of an account.
pub const CLEAR_NETWORK_FAILURES: &str = "DELETE FROM sign_in_failures WHERE user_id = $1";
/// Deletes an account; everything it held goes with it (foreign keys cascade).
pub const DELETE_USER: &str = "DELETE FROM users WHERE id = $1";
/// Stores a new password hash.
pub const SET_PASSWORD: &str = "UPDATE users SET password_hash = $1 WHERE id = $2";
/// Ends an account's sessions but one (pass a hash no session has to end them all).
pub const DELETE_SESSIONS_OF: &str = "DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2";
/// Revokes an account's live token families.
pub const REVOKE_FAMILIES_OF: &str =
    "UPDATE token_families SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL";
/// Denies an account's approved grants that were not collected.
pub const DENY_APPROVED_GRANTS_OF: &str =
    "UPDATE device_grants SET status = 'denied' WHERE user_id = $1 AND status = 'approved'";
/// Cancels an account's approved QR sign-ins that were not collected.
pub const CANCEL_APPROVED_PAIRINGS_OF: &str =
    "UPDATE pairings SET status = 'cancelled' WHERE user_id = $1 AND status = 'approved'";
/// Revokes an account's live enrollment keys.
pub const REVOKE_ENROLLMENT_KEYS_OF: &str =
    "UPDATE enrollment_keys SET revoked_at = $1 WHERE owner_id = $2 AND revoked_at IS NULL";
/// Creates a session.
pub const INSERT_SESSION: &str =
    "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, id, ip, user_agent, amr)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
/// A live session with its user.
pub const SESSION: &str = concat!(
    "SELECT ",
    user_columns!(),
    ", s.created_at, s.expires_at, s.id, s.amr FROM sessions s JOIN users u ON u.id = s.user_id
     WHERE s.token_hash = $1 AND s.expires_at > $2"
);
/// Ends a session; returns whose it was.
pub const DELETE_SESSION: &str = "DELETE FROM sessions WHERE token_hash = $1 RETURNING user_id";
/// Registers an app.
pub const INSERT_APP: &str = "INSERT INTO apps (client_id, display_name, kind, secret_hash, grant_types, redirect_uris,
        created_at, app_url, qr_sign_in, require_dpop, post_logout_redirect_uris, id_token_alg)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
/// An app by client ID.
pub const APP: &str = concat!("SELECT ", app_columns!(), " FROM apps WHERE client_id = $1");
/// Changes an app's settings; returns the app as it now stands.
pub const UPDATE_APP: &str = concat!(
    "UPDATE apps SET display_name = $1, grant_types = $2, app_url = $3, qr_sign_in = $4, require_dpop = $5,
        redirect_uris = $6, post_logout_redirect_uris = $7, id_token_alg = $8
     WHERE client_id = $9
     RETURNING ",
    app_columns!()
);
/// Every app, by client ID in SQLite's byte order (PostgreSQL needs a collation for that, so it says its own).
pub const APPS: &str = concat!("SELECT ", app_columns!(), " FROM apps ORDER BY client_id");
/// [`APPS`] in byte order on PostgreSQL, whatever the database's collation.
pub const APPS_BYTE_ORDER_PG: &str = concat!("SELECT ", app_columns!(), " FROM apps ORDER BY client_id COLLATE \"C\"");

// ---- device grants ----

/// Creates a grant.
pub const INSERT_GRANT: &str = "INSERT INTO device_grants (id, client_id, scope, device_code_hash, user_code_hash,
        status, created_at, expires_at, interval_secs, requester_ip, requester_user_agent, device_name,
        device_slug, device_location, device_platform, device_client_version, device_public_jwk, device_jkt)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)";
/// The grant behind a device code.
pub const GRANT_BY_DEVICE_CODE: &str =
    concat!("SELECT ", grant_columns!(), " FROM device_grants WHERE device_code_hash = $1");
/// The grant behind a user code.
pub const GRANT_BY_USER_CODE: &str =
    concat!("SELECT ", grant_columns!(), " FROM device_grants WHERE user_code_hash = $1");
/// Stores a decision on a pending grant.
pub const SET_GRANT_DECIDED: &str =
    "UPDATE device_grants SET status = $1, user_id = $2, decided_at = $3, device_id = $4
     WHERE id = $5 AND status = 'pending'";
/// Stores a poll and the interval.
pub const SET_GRANT_POLLED: &str = "UPDATE device_grants SET last_polled_at = $1, interval_secs = $2 WHERE id = $3";
/// Consumes an approved grant.
pub const SET_GRANT_CONSUMED: &str =
    "UPDATE device_grants SET status = 'consumed' WHERE id = $1 AND status = 'approved'";

// ---- devices ----

/// One device.
pub const DEVICE: &str = concat!("SELECT ", device_columns!(), " FROM devices WHERE id = $1");
/// The owner's devices with this slug (a revoked device keeps its slug).
pub const DEVICES_WITH_SLUG: &str =
    concat!("SELECT ", device_columns!(), " FROM devices WHERE owner_id = $1 AND slug = $2 ORDER BY created_at DESC");
/// A device's status.
pub const DEVICE_STATUS: &str = "SELECT status FROM devices WHERE id = $1";
/// The owner's newest active device with a key.
pub const ACTIVE_DEVICE_WITH_KEY: &str = concat!(
    "SELECT ",
    device_columns!(),
    " FROM devices WHERE owner_id = $1 AND jkt = $2 AND status = 'active' ORDER BY created_at DESC, id LIMIT 1"
);
/// How many active devices the owner has.
pub const ACTIVE_DEVICE_COUNT: &str = "SELECT COUNT(*) FROM devices WHERE owner_id = $1 AND status = 'active'";
/// Every slug the owner's devices ever had.
pub const DEVICE_SLUGS: &str = "SELECT slug FROM devices WHERE owner_id = $1";
/// Whether one of the owner's devices ever had this slug (one probe of the unique index).
pub const SLUG_TAKEN: &str = "SELECT 1 FROM devices WHERE owner_id = $1 AND slug = $2";
/// The owner's devices, newest first.
pub const DEVICES_OF_OWNER: &str =
    concat!("SELECT ", device_columns!(), " FROM devices WHERE owner_id = $1 ORDER BY created_at DESC, id");
/// Creates a device.
pub const INSERT_DEVICE: &str = "INSERT INTO devices (id, owner_id, display_name, slug, location, platform,
        client_version, created_at, status, public_jwk, jkt) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
/// Adds to a device's location history.
pub const INSERT_LOCATION: &str =
    "INSERT INTO device_locations (device_id, location, effective_at) VALUES ($1, $2, $3)";
/// Renames a device.
pub const SET_DEVICE_NAME: &str = "UPDATE devices SET display_name = $1 WHERE id = $2";
/// Moves a device.
pub const SET_DEVICE_LOCATION: &str = "UPDATE devices SET location = $1 WHERE id = $2";
/// Revokes a device.
pub const SET_DEVICE_REVOKED: &str = "UPDATE devices SET status = 'revoked', revoked_at = $1 WHERE id = $2";
/// Records a device's use of its tokens.
pub const TOUCH_DEVICE: &str = "UPDATE devices SET last_seen_at = $1 WHERE id = $2";

// ---- token families, refresh tokens ----

/// Starts a token family.
pub const INSERT_FAMILY: &str = "INSERT INTO token_families (id, client_id, user_id, scope, auth_time, created_at,
        device_id, jkt, ip, user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
/// Stores a refresh token.
pub const INSERT_REFRESH_TOKEN: &str =
    "INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";
/// A refresh token with its family and user, as [`crate::rows::refresh_token`] reads it.
pub const REFRESH_TOKEN: &str = "SELECT f.id, f.client_id, f.user_id, u.username, f.scope, t.created_at, t.expires_at,
        t.rotated_at, f.revoked_at IS NOT NULL, f.auth_time, f.device_id, f.jkt
     FROM refresh_tokens t JOIN token_families f ON f.id = t.family_id JOIN users u ON u.id = f.user_id
     WHERE t.token_hash = $1";
/// Marks a refresh token exchanged.
pub const SET_REFRESH_ROTATED: &str = "UPDATE refresh_tokens SET rotated_at = $1 WHERE token_hash = $2";
/// Marks every live refresh token of a family exchanged (a retry replaces them).
pub const SET_FAMILY_TOKENS_ROTATED: &str =
    "UPDATE refresh_tokens SET rotated_at = $1 WHERE family_id = $2 AND rotated_at IS NULL";
/// The owner of a live family issued to a client.
pub const LIVE_FAMILY_OWNER: &str =
    "SELECT user_id FROM token_families WHERE id = $1 AND client_id = $2 AND revoked_at IS NULL";
/// Revokes a live family.
pub const SET_FAMILY_REVOKED: &str = "UPDATE token_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
/// Revokes a device's live families.
pub const SET_DEVICE_FAMILIES_REVOKED: &str =
    "UPDATE token_families SET revoked_at = $1 WHERE device_id = $2 AND revoked_at IS NULL";
/// Whether a family is unrevoked, and its account's status.
pub const FAMILY_LIVENESS: &str = "SELECT f.revoked_at IS NULL, u.disabled_at, u.locked_until
     FROM token_families f JOIN users u ON u.id = f.user_id WHERE f.id = $1";

// ---- activity (the charts on the pages) ----

/// A user's device sign-ins (token families started for a device) since `$2`, counted per
/// device and UTC day (days since the epoch). A family outlives its refresh tokens by a
/// day before the sweep removes it, so with refresh tokens that live 30 days (the
/// default) every sign-in of the last 30 days is still here.
pub const DEVICE_SIGN_INS_BY_DAY: &str = "SELECT device_id, created_at / 86400000, COUNT(*) FROM token_families
     WHERE user_id = $1 AND device_id IS NOT NULL AND created_at >= $2
     GROUP BY device_id, created_at / 86400000 ORDER BY 1, 2";
/// Device logins per audit kind and hour (since the epoch), since `$1`. A
/// request's `grant.requested` entry is written when it is decided (older logs
/// wrote it when it was made); a request nobody decided yet is counted from its
/// grant row, while the row is held.
pub const LOGINS_BY_HOUR: &str = "SELECT kind, hour, CAST(SUM(n) AS BIGINT) FROM (
       SELECT kind, at / 3600000 AS hour, COUNT(*) AS n FROM audit_log
        WHERE kind IN ('grant.requested', 'grant.approved', 'grant.denied') AND at >= $1
        GROUP BY kind, at / 3600000
       UNION ALL
       SELECT 'grant.requested', created_at / 3600000, COUNT(*) FROM device_grants
        WHERE status = 'pending' AND created_at >= $1
        GROUP BY created_at / 3600000
     ) t GROUP BY kind, hour ORDER BY 2, 1";
/// Device logins requested since `$1` and before `$2` (so past their lifetime) that nobody
/// approved or denied, counted per hour (since the epoch) of the request: undecided grant
/// rows (until the sweep deletes them), and requests older logs recorded with no decision.
pub const EXPIRED_LOGINS_BY_HOUR: &str = "SELECT hour, CAST(SUM(n) AS BIGINT) FROM (
       SELECT r.at / 3600000 AS hour, COUNT(*) AS n FROM audit_log r
        WHERE r.kind = 'grant.requested' AND r.at >= $1 AND r.at < $2
          AND NOT EXISTS (SELECT 1 FROM audit_log d WHERE d.subject = r.subject
                          AND d.kind IN ('grant.approved', 'grant.denied'))
        GROUP BY r.at / 3600000
       UNION ALL
       SELECT created_at / 3600000, COUNT(*) FROM device_grants
        WHERE status = 'pending' AND created_at >= $1 AND created_at < $2
        GROUP BY created_at / 3600000
     ) t GROUP BY hour ORDER BY 1";
/// How many devices are active and how many accounts are enabled, server-wide.
pub const ACTIVE_TOTALS: &str = "SELECT (SELECT COUNT(*) FROM devices WHERE status = 'active'),
        (SELECT COUNT(*) FROM users WHERE disabled_at IS NULL)";

// ---- sign-ins that are not devices ----

/// A user's live sign-ins that are not devices, newest first, as [`crate::rows::sign_in`]
/// reads them: sessions until they expire, and device-less token families while
/// unrevoked and either started since `$3` (their access tokens may still work)
/// or holding a refresh token that works at `$2`.
pub const SIGN_INS: &str = "SELECT 'browser', s.id, NULL, NULL, s.ip, s.user_agent, s.created_at
     FROM sessions s WHERE s.user_id = $1 AND s.expires_at > $2
     UNION ALL
     SELECT 'app', f.id, f.client_id, a.display_name, f.ip, f.user_agent, f.created_at
     FROM token_families f LEFT JOIN apps a ON a.client_id = f.client_id
     WHERE f.user_id = $1 AND f.device_id IS NULL AND f.revoked_at IS NULL
       AND (f.created_at >= $3 OR EXISTS (SELECT 1 FROM refresh_tokens t
            WHERE t.family_id = f.id AND t.rotated_at IS NULL AND t.expires_at > $2))
     ORDER BY 7 DESC";
/// Ends one of a user's sessions by ID.
pub const DELETE_SESSION_OF: &str = "DELETE FROM sessions WHERE id = $1 AND user_id = $2";
/// Revokes one of a user's live device-less token families; returns its app.
pub const REVOKE_WEB_FAMILY: &str = "UPDATE token_families SET revoked_at = $1
     WHERE id = $2 AND user_id = $3 AND device_id IS NULL AND revoked_at IS NULL RETURNING client_id";

// ---- pairings ----

/// Creates a pairing.
pub const INSERT_PAIRING: &str = "INSERT INTO pairings (id, client_id, desktop_secret_hash, phone_code_hash, status,
        created_at, expires_at, requester_ip, requester_user_agent, continues)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
/// The pairing behind the phone's code.
pub const PAIRING_BY_PHONE_CODE: &str =
    concat!("SELECT ", pairing_columns!(), " FROM pairings WHERE phone_code_hash = $1");
/// The pairing behind the desktop's secret.
pub const PAIRING_BY_DESKTOP_SECRET: &str =
    concat!("SELECT ", pairing_columns!(), " FROM pairings WHERE desktop_secret_hash = $1");
/// Moves a pairing between statuses, recording the decider if given.
pub const SET_PAIRING_STATUS: &str = "UPDATE pairings SET status = $1, user_id = COALESCE($2, user_id),
        decided_at = CASE WHEN CAST($2 AS TEXT) IS NULL THEN decided_at ELSE $3 END
     WHERE id = $4 AND status = $5";

// ---- enrollment keys ----

/// Creates an enrollment key.
pub const INSERT_ENROLLMENT_KEY: &str = "INSERT INTO enrollment_keys (id, key_hash, owner_id, reusable, expires_at,
        tag, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
/// A key as using it needs it, as [`crate::rows::usable_key`] reads it.
pub const USABLE_KEY: &str =
    "SELECT id, owner_id, reusable, uses, expires_at, revoked_at IS NOT NULL FROM enrollment_keys WHERE key_hash = $1";
/// Counts one use, only if reusable or unused.
pub const COUNT_KEY_USE: &str = "UPDATE enrollment_keys SET uses = uses + 1 WHERE id = $1 AND (reusable OR uses = 0)";
/// Revokes a live key, only the owner's when one is given.
pub const SET_KEY_REVOKED: &str = "UPDATE enrollment_keys SET revoked_at = $1
     WHERE id = $2 AND revoked_at IS NULL AND (CAST($3 AS TEXT) IS NULL OR owner_id = $3)";
/// Keys, newest first; only the owner's when one is given.
pub const ENROLLMENT_KEYS: &str = concat!(
    "SELECT ",
    enrollment_key_columns!(),
    " FROM enrollment_keys k JOIN users u ON u.id = k.owner_id
     WHERE CAST($1 AS TEXT) IS NULL OR k.owner_id = $1 ORDER BY k.created_at DESC, k.id"
);

// ---- signing keys, housekeeping ----

/// Retires the active signing key.
pub const RETIRE_SIGNING_KEYS: &str = "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL AND alg = $2";
/// Adds a signing key.
pub const INSERT_SIGNING_KEY: &str =
    "INSERT INTO signing_keys (kid, private_sealed, public_key, created_at, alg) VALUES ($1, $2, $3, $4, $5)";
/// Replaces a signing key's stored private key (sealing it, or sealing it again).
pub const SET_SIGNING_KEY_SEALED: &str = "UPDATE signing_keys SET private_sealed = $1 WHERE kid = $2";
/// Replaces an audit key's stored seed (sealing it, or sealing it again).
pub const SET_AUDIT_KEY_SEALED: &str = "UPDATE audit_keys SET seed_sealed = $1 WHERE key_id = $2";
/// The ID of the secret key the stored keys are sealed under (`NULL`: not sealed yet).
pub const KEY_SEALING: &str = "SELECT key_id FROM key_sealing WHERE id = 1";
/// Records the secret key the stored keys are sealed under.
pub const SET_KEY_SEALING: &str = "UPDATE key_sealing SET key_id = $1, changed_at = $2 WHERE id = 1";
/// Grants past the cut-off.
pub const SWEEP_GRANTS: &str = "DELETE FROM device_grants WHERE expires_at < $1";
/// Pairings past the cut-off.
pub const SWEEP_PAIRINGS: &str = "DELETE FROM pairings WHERE expires_at < $1";
/// Sessions past the cut-off.
pub const SWEEP_SESSIONS: &str = "DELETE FROM sessions WHERE expires_at < $1";
/// Refresh tokens past the cut-off.
pub const SWEEP_REFRESH_TOKENS: &str = "DELETE FROM refresh_tokens WHERE expires_at < $1";
/// Families older than the cut-off with no refresh token left.
pub const SWEEP_EMPTY_FAMILIES: &str = "DELETE FROM token_families WHERE created_at < $1
       AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = token_families.id)";

// ---- events ----

/// An app's event kind, as [`crate::rows::event_kind`] reads it.
pub const EVENT_KIND: &str =
    "SELECT client_id, name, spec, retention_secs, created_at FROM event_kinds WHERE client_id = $1 AND name = $2";
/// An app's event kinds, by name.
pub const EVENT_KINDS: &str =
    "SELECT client_id, name, spec, retention_secs, created_at FROM event_kinds WHERE client_id = $1 ORDER BY name";
/// Declares an event kind.
pub const INSERT_EVENT_KIND: &str =
    "INSERT INTO event_kinds (client_id, name, spec, retention_secs, created_at) VALUES ($1, $2, $3, $4, $5)";
/// Changes a kind's retention.
pub const SET_EVENT_KIND_RETENTION: &str =
    "UPDATE event_kinds SET retention_secs = $1 WHERE client_id = $2 AND name = $3";
/// Creates a user's stream head if missing.
pub const ENSURE_EVENT_HEAD: &str =
    "INSERT INTO event_heads (user_id, seq) VALUES ($1, 0) ON CONFLICT (user_id) DO NOTHING";
/// The last number handed out in a user's stream; the backend may hold the row.
pub const EVENT_HEAD: &str = "SELECT seq FROM event_heads WHERE user_id = $1";
/// Stores the last number handed out.
pub const SET_EVENT_HEAD: &str = "UPDATE event_heads SET seq = $1 WHERE user_id = $2";
/// The columns an event is inserted with, in the order both event inserts bind them.
macro_rules! event_insert_columns {
    () => {
        "id, user_id, client_id, kind, series, identity, start_at, end_at, created_at, seq, observers"
    };
}

/// Stores an event unless its ID is taken.
pub const INSERT_EVENT: &str = concat!(
    "INSERT INTO events (",
    event_insert_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING"
);
/// Events per [`INSERT_EVENTS`] statement: one round trip stores this many.
pub const EVENT_INSERT_ROWS: usize = 50;
/// Stores [`EVENT_INSERT_ROWS`] events, each bound as [`INSERT_EVENT`] binds one,
/// skipping IDs already taken; returns the IDs it stored.
pub static INSERT_EVENTS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    const COLUMNS: usize = 11;
    let rows: Vec<String> = (0..EVENT_INSERT_ROWS)
        .map(|r| {
            let params: Vec<String> = (1..=COLUMNS).map(|c| format!("${}", r * COLUMNS + c)).collect();
            format!("({})", params.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO events ({}) VALUES {} ON CONFLICT (id) DO NOTHING RETURNING id",
        event_insert_columns!(),
        rows.join(", ")
    )
});
/// An event's observers, as [`crate::rows::observers`] reads them.
pub const EVENT_OBSERVERS: &str = "SELECT observers FROM events WHERE id = $1";
/// Replaces an event's observers, at a new place in its stream.
pub const SET_EVENT_OBSERVERS: &str = "UPDATE events SET observers = $1, seq = $2 WHERE id = $3";
/// Moves an event to a new place in its stream.
pub const SET_EVENT_SEQ: &str = "UPDATE events SET seq = $1 WHERE id = $2";
/// Records the part of an interval event a device captured.
pub const ADD_PART: &str = "INSERT INTO event_parts (event_id, device_id, start_at, end_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (event_id, device_id, start_at, end_at) DO NOTHING";
/// A series' live events, as [`crate::rows::series_event`] reads them.
pub const SERIES_EVENTS: &str =
    "SELECT id, start_at, end_at FROM events WHERE series = $1 AND merged_into IS NULL AND start_at IS NOT NULL
     ORDER BY start_at";
/// Widens an interval event, with its observers now.
pub const SET_EVENT_INTERVAL: &str =
    "UPDATE events SET start_at = $1, end_at = $2, observers = $3, seq = $4 WHERE id = $5";
/// Marks an event merged into another.
pub const SET_MERGED_INTO: &str = "UPDATE events SET merged_into = $1, seq = $2 WHERE id = $3";
/// Copies an event's parts to another.
pub const MOVE_PARTS: &str = "INSERT INTO event_parts (event_id, device_id, start_at, end_at)
     SELECT CAST($1 AS TEXT), device_id, start_at, end_at FROM event_parts WHERE event_id = $2
     ON CONFLICT (event_id, device_id, start_at, end_at) DO NOTHING";
/// A user's events of one app changed after a cursor, with their observers, as [`crate::rows::stored_event`] reads them.
pub const EVENTS_AFTER: &str = "SELECT id, seq, client_id, kind, identity, start_at, end_at, merged_into, observers
     FROM events WHERE user_id = $1 AND client_id = $2 AND seq > $3 ORDER BY seq LIMIT $4";
/// Parts of a user's events changed in a range of the stream.
pub const PARTS_BETWEEN: &str = "SELECT p.event_id, p.device_id, p.start_at, p.end_at
     FROM event_parts p JOIN events e ON e.id = p.event_id
     WHERE e.user_id = $1 AND e.seq > $2 AND e.seq <= $3 ORDER BY p.start_at, p.end_at, p.device_id";
/// Records a one-time value, or renews one that expired; returns a row only then (not on a replay).
pub const FIRST_USE: &str = "INSERT INTO once_used (key, until) VALUES ($1, $2)
     ON CONFLICT (key) DO UPDATE SET until = excluded.until WHERE once_used.until <= $3 RETURNING 1";
/// Forgets one-time values that can no longer be presented.
pub const SWEEP_ONCE_USED: &str = "DELETE FROM once_used WHERE until <= $1";
/// Deletes events past their kind's retention.
pub const SWEEP_EVENTS: &str = "DELETE FROM events WHERE EXISTS (SELECT 1 FROM event_kinds k
     WHERE k.client_id = events.client_id AND k.name = events.kind AND k.retention_secs IS NOT NULL
       AND events.created_at + k.retention_secs * 1000 < $1)";

// ---- web sign-in: authorization codes and consent ----

/// Columns of `authorization_codes`, as [`crate::rows::authorization_code`] reads them.
macro_rules! code_columns {
    () => {
        "code_hash, client_id, user_id, redirect_uri, scope, nonce, code_challenge, auth_time, amr, ip, user_agent,
         expires_at, used_at, family_id"
    };
}

/// Stores an authorization code.
pub const INSERT_AUTHORIZATION_CODE: &str = "INSERT INTO authorization_codes (code_hash, client_id, user_id,
        redirect_uri, scope, nonce, code_challenge, auth_time, amr, ip, user_agent, created_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
/// The code behind a hash.
pub const AUTHORIZATION_CODE: &str =
    concat!("SELECT ", code_columns!(), " FROM authorization_codes WHERE code_hash = $1");
/// Marks a code redeemed, once.
pub const SET_CODE_USED: &str =
    "UPDATE authorization_codes SET used_at = $1, family_id = $2 WHERE code_hash = $3 AND used_at IS NULL";
/// Codes past the cut-off.
pub const SWEEP_AUTHORIZATION_CODES: &str = "DELETE FROM authorization_codes WHERE expires_at < $1";
/// Revokes one account's live families of one app.
pub const REVOKE_APP_FAMILIES_OF: &str = "UPDATE token_families SET revoked_at = $1
     WHERE user_id = $2 AND client_id = $3 AND device_id IS NULL AND revoked_at IS NULL";
/// One person's consent for one app.
pub const CONSENT: &str =
    "SELECT user_id, client_id, scope, granted_at FROM consents WHERE user_id = $1 AND client_id = $2";
/// A person's consents, newest first.
pub const CONSENTS_OF: &str =
    "SELECT user_id, client_id, scope, granted_at FROM consents WHERE user_id = $1 ORDER BY granted_at DESC, client_id";
/// Records (or widens) a consent.
pub const UPSERT_CONSENT: &str = "INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at";
/// Withdraws a consent.
pub const DELETE_CONSENT: &str = "DELETE FROM consents WHERE user_id = $1 AND client_id = $2";

// ---- passkeys (WebAuthn) and their ceremonies ----

/// Columns of `passkeys`, as [`crate::rows::passkey`] reads them.
macro_rules! passkey_columns {
    () => {
        "id, user_id, credential_id, passkey, name, created_at, last_used_at"
    };
}

/// A person's passkeys, oldest first.
pub const PASSKEYS_OF: &str =
    concat!("SELECT ", passkey_columns!(), " FROM passkeys WHERE user_id = $1 ORDER BY created_at, id");
/// The passkey with a credential ID (whoever holds it).
pub const PASSKEY_BY_CREDENTIAL: &str =
    concat!("SELECT ", passkey_columns!(), " FROM passkeys WHERE credential_id = $1");
/// Stores a new passkey.
pub const INSERT_PASSKEY: &str =
    "INSERT INTO passkeys (id, user_id, credential_id, passkey, name, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
/// Removes one of a person's passkeys; returns its name.
pub const DELETE_PASSKEY: &str = "DELETE FROM passkeys WHERE id = $1 AND user_id = $2 RETURNING name";
/// How many passkeys a person has.
pub const COUNT_PASSKEYS: &str = "SELECT COUNT(*) FROM passkeys WHERE user_id = $1";
/// Stores a passkey's state after a sign-in (counter, backup state) and when it was used.
pub const SET_PASSKEY_USED: &str = "UPDATE passkeys SET passkey = $1, last_used_at = $2 WHERE id = $3 AND user_id = $4";
/// Stores a ceremony's challenge state.
pub const INSERT_CEREMONY: &str = "INSERT INTO webauthn_ceremonies (id_hash, kind, state, user_id, created_at,
        expires_at) VALUES ($1, $2, $3, $4, $5, $6)";
/// Takes a live ceremony of a kind: it is gone once read, so a challenge answers once.
pub const TAKE_CEREMONY: &str = "DELETE FROM webauthn_ceremonies WHERE id_hash = $1 AND kind = $2 AND expires_at > $3
     RETURNING state, user_id";
/// Forgets expired ceremonies.
pub const SWEEP_CEREMONIES: &str = "DELETE FROM webauthn_ceremonies WHERE expires_at < $1";

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$N` in order of first appearance.
    fn first_appearances(sql: &str) -> Vec<u32> {
        let mut seen = Vec::new();
        let bytes = sql.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'$' {
                let digits: String = sql[i + 1..].chars().take_while(char::is_ascii_digit).collect();
                if let Ok(n) = digits.parse::<u32>() {
                    if !seen.contains(&n) {
                        seen.push(n);
                    }
                }
                i += digits.len();
            }
            i += 1;
        }
        seen
    }

    #[test]
    fn parameters_first_appear_in_order_so_sqlite_binds_them_as_postgresql_does() {
        let all = [
            EVENT_KIND,
            EVENT_KINDS,
            INSERT_EVENT_KIND,
            SET_EVENT_KIND_RETENTION,
            ENSURE_EVENT_HEAD,
            EVENT_HEAD,
            SET_EVENT_HEAD,
            INSERT_EVENT,
            EVENT_OBSERVERS,
            SET_EVENT_OBSERVERS,
            SET_EVENT_SEQ,
            ADD_PART,
            SERIES_EVENTS,
            SET_EVENT_INTERVAL,
            SET_MERGED_INTO,
            MOVE_PARTS,
            EVENTS_AFTER,
            PARTS_BETWEEN,
            SWEEP_EVENTS,
            FIRST_USE,
            SWEEP_ONCE_USED,
            SIGN_INS,
            DEVICE_SIGN_INS_BY_DAY,
            LOGINS_BY_HOUR,
            EXPIRED_LOGINS_BY_HOUR,
            ACTIVE_TOTALS,
            DELETE_SESSION_OF,
            REVOKE_WEB_FAMILY,
            USERNAME,
            INSERT_USER,
            USER_BY_NAME,
            COUNT_USERS,
            INSERT_SESSION,
            SESSION,
            DELETE_SESSION,
            INSERT_APP,
            APP,
            UPDATE_APP,
            APPS,
            INSERT_GRANT,
            GRANT_BY_DEVICE_CODE,
            GRANT_BY_USER_CODE,
            SET_GRANT_DECIDED,
            SET_GRANT_POLLED,
            SET_GRANT_CONSUMED,
            DEVICE,
            DEVICE_STATUS,
            ACTIVE_DEVICE_WITH_KEY,
            ACTIVE_DEVICE_COUNT,
            DEVICE_SLUGS,
            SLUG_TAKEN,
            DEVICES_OF_OWNER,
            INSERT_DEVICE,
            INSERT_LOCATION,
            SET_DEVICE_NAME,
            SET_DEVICE_LOCATION,
            SET_DEVICE_REVOKED,
            TOUCH_DEVICE,
            INSERT_FAMILY,
            INSERT_REFRESH_TOKEN,
            REFRESH_TOKEN,
            SET_REFRESH_ROTATED,
            SET_FAMILY_TOKENS_ROTATED,
            LIVE_FAMILY_OWNER,
            SET_FAMILY_REVOKED,
            SET_DEVICE_FAMILIES_REVOKED,
            FAMILY_LIVENESS,
            ACCOUNT_STATUS,
            USERS,
            USER_BY_ID,
            SET_USER_DISABLED,
            FAILURE_RUN,
            SET_FAILURE_RUN,
            SET_LOCKED_UNTIL,
            ADD_NETWORK_FAILURE,
            PRUNE_NETWORK_FAILURES,
            NETWORK_FAILED_AT,
            CLEAR_NETWORK_FAILURES,
            DELETE_USER,
            SET_PASSWORD,
            DELETE_SESSIONS_OF,
            REVOKE_FAMILIES_OF,
            DENY_APPROVED_GRANTS_OF,
            CANCEL_APPROVED_PAIRINGS_OF,
            REVOKE_ENROLLMENT_KEYS_OF,
            INSERT_PAIRING,
            PAIRING_BY_PHONE_CODE,
            PAIRING_BY_DESKTOP_SECRET,
            SET_PAIRING_STATUS,
            INSERT_ENROLLMENT_KEY,
            USABLE_KEY,
            COUNT_KEY_USE,
            SET_KEY_REVOKED,
            ENROLLMENT_KEYS,
            RETIRE_SIGNING_KEYS,
            INSERT_SIGNING_KEY,
            SET_SIGNING_KEY_SEALED,
            SET_AUDIT_KEY_SEALED,
            KEY_SEALING,
            SET_KEY_SEALING,
            SWEEP_GRANTS,
            SWEEP_PAIRINGS,
            SWEEP_SESSIONS,
            SWEEP_REFRESH_TOKENS,
            SWEEP_EMPTY_FAMILIES,
            INSERT_AUTHORIZATION_CODE,
            AUTHORIZATION_CODE,
            SET_CODE_USED,
            SWEEP_AUTHORIZATION_CODES,
            REVOKE_APP_FAMILIES_OF,
            CONSENT,
            CONSENTS_OF,
            UPSERT_CONSENT,
            DELETE_CONSENT,
            PASSKEYS_OF,
            PASSKEY_BY_CREDENTIAL,
            INSERT_PASSKEY,
            DELETE_PASSKEY,
            COUNT_PASSKEYS,
            SET_PASSKEY_USED,
            INSERT_CEREMONY,
            TAKE_CEREMONY,
            SWEEP_CEREMONIES,
        ];
        for sql in all.into_iter().chain(crate::sql_trust::ALL).chain([DEVICES_WITH_SLUG, INSERT_EVENTS.as_str()]) {
            let seen = first_appearances(sql);
            let expected: Vec<u32> = (1..=seen.len() as u32).collect();
            assert_eq!(seen, expected, "parameters out of order in: {sql}");
            assert!(!sql.contains("::"), "PostgreSQL-only cast in: {sql}");
            assert!(!sql.contains('?'), "SQLite-only placeholder in: {sql}");
        }
    }

    #[test]
    fn the_order_check_catches_a_reordered_statement() {
        assert_eq!(first_appearances("UPDATE t SET a = $2 WHERE b = $1"), vec![2, 1]);
    }
}
