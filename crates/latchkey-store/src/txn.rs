//! What a backend does inside one transaction: load, execute and write.
//!
//! Every method is one statement (or a lock); none decides anything. The
//! operations in [`crate::flows`] are written once against this trait: they
//! load records, ask `latchkey-domain` for a plan, and execute it through
//! these methods, so a rule cannot drift between backends.
//!
//! `lock` arguments say "this row decides the transaction: hold it until
//! commit". PostgreSQL takes the row lock (`FOR UPDATE`); SQLite has one
//! writer, which already runs transactions one at a time, and ignores it.

use crate::activity::DaySignIns;
use crate::at_rest::{StoredAuditKey, StoredSigningKey};
use crate::audit_records::AuditTreeState;
use crate::passkey_records::*;
use crate::records::*;
use crate::trust_records::*;
use crate::StoreError;
use latchkey_domain::account::{AccountStatus, FailureRun};
use latchkey_domain::audit::{AuditEntry, AuditEvent};
use latchkey_domain::device::DeviceStatus;
use latchkey_domain::merkle::{Hash, NodeId};
use latchkey_domain::pairing::PairingStatus;
use latchkey_domain::secret::SecretHash;
use latchkey_domain::Timestamp;
use std::collections::HashSet;

/// Which of a grant's two codes finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantCode {
    /// The device's secret code (redeeming).
    Device,
    /// The code a person types (deciding).
    User,
}

/// Which of a pairing's two secrets finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairingCode {
    /// The one-time code in the phone's URL.
    Phone,
    /// The desktop's secret.
    Desktop,
}

/// A token family to start.
#[derive(Debug, Clone)]
pub struct NewFamily<'a> {
    /// Family ID (the access token's `sid`).
    pub id: &'a str,
    /// The app it is for.
    pub client_id: &'a str,
    /// Whose it is.
    pub user_id: &'a str,
    /// Granted scope.
    pub scope: &'a str,
    /// When the user approved (OIDC `auth_time`).
    pub auth_time: Timestamp,
    /// The device it belongs to.
    pub device_id: Option<&'a str>,
    /// The key it is bound to.
    pub jkt: Option<&'a str>,
    /// Where the sign-in started: IP address, if known.
    pub ip: Option<&'a str>,
    /// Where the sign-in started: User-Agent, if known.
    pub user_agent: Option<&'a str>,
}

/// An event to insert.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    /// Canonical ID.
    pub id: &'a str,
    /// Whose stream.
    pub user_id: &'a str,
    /// The app.
    pub client_id: &'a str,
    /// The kind.
    pub kind: &'a str,
    /// The identity's hash.
    pub series: &'a str,
    /// Canonical identity (JSON text).
    pub identity: &'a str,
    /// Its interval (interval kinds).
    pub interval: Option<latchkey_domain::events::Interval>,
    /// The devices that observed it.
    pub observers: &'a latchkey_domain::events::Observers,
}

/// One transaction of a backend, seen as the statements the operations need.
///
/// The futures are not required to be `Send`: SQLite's transaction lives on
/// its writer thread and never suspends. PostgreSQL's are `Send`, and callers
/// that name the concrete type get that.
#[allow(async_fn_in_trait)]
pub trait Txn {
    /// The backend's failure; keeps what the backend needs (PostgreSQL retries deadlocks).
    type Error: From<StoreError>;

    // ---- audit and wake-ups ----

    /// Writes `event` into the audit log, in this transaction. It takes no lock:
    /// the sealer gives it its place in the tree after it commits.
    async fn append_audit(&self, event: &AuditEvent, now: Timestamp) -> Result<(), Self::Error>;
    /// Takes the seal for this transaction if no one else holds it (PostgreSQL: an
    /// advisory lock, so one replica seals at a time; SQLite: its one writer).
    async fn try_seal_lock(&self) -> Result<bool, Self::Error>;
    /// Committed entries without a leaf yet, oldest `seq` first, at most `limit`.
    async fn unsealed_audit(&self, limit: i64) -> Result<Vec<AuditEntry>, Self::Error>;
    /// The tree as last sealed; with `lock`, held until commit.
    async fn audit_tree(&self, lock: bool) -> Result<AuditTreeState, Self::Error>;
    /// Stores the tree's new state and checkpoint.
    async fn set_audit_tree(&self, state: &AuditTreeState) -> Result<(), Self::Error>;
    /// Gives entries their leaves: (seq, leaf).
    async fn set_audit_leaves(&self, leaves: &[(i64, i64)]) -> Result<(), Self::Error>;
    /// Stores completed subtrees.
    async fn insert_audit_nodes(&self, nodes: &[(NodeId, Hash)]) -> Result<(), Self::Error>;
    /// The stored subtrees among `ids` (missing ones are left out).
    async fn audit_nodes(&self, ids: &[NodeId]) -> Result<Vec<(NodeId, Hash)>, Self::Error>;
    /// The leaves of the sealed entries among `seqs`: (seq, leaf).
    async fn audit_leaves_of(&self, seqs: &[i64]) -> Result<Vec<(i64, i64)>, Self::Error>;
    /// Every audit signing key as stored (seeds sealed), oldest first.
    async fn audit_keys(&self) -> Result<Vec<StoredAuditKey>, Self::Error>;
    /// Adds an audit signing key (its seed sealed).
    async fn insert_audit_key(&self, key: &StoredAuditKey) -> Result<(), Self::Error>;
    /// Replaces an audit key's stored seed.
    async fn set_audit_key_sealed(&self, key_id: u32, sealed: &[u8]) -> Result<(), Self::Error>;
    /// Every token-signing key as stored (private keys sealed), newest first.
    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, Self::Error>;
    /// Retires every signing key that has none, from `at` (PostgreSQL: after locking
    /// the table, so concurrent rotations leave exactly one key unretired).
    async fn retire_signing_keys(&self, alg: IdTokenAlg, at: Timestamp) -> Result<(), Self::Error>;
    /// Adds a signing key (its private key sealed).
    async fn insert_signing_key(&self, key: &StoredSigningKey) -> Result<(), Self::Error>;
    /// Replaces a signing key's stored private key.
    async fn set_signing_key_sealed(&self, kid: &str, sealed: &[u8]) -> Result<(), Self::Error>;
    /// The ID of the secret key the stored keys are sealed under, `None` while they
    /// are plaintext; with `lock`, held until commit.
    async fn key_sealing(&self, lock: bool) -> Result<Option<String>, Self::Error>;
    /// Records the secret key the stored keys are sealed under.
    async fn set_key_sealing(&self, key_id: &str, now: Timestamp) -> Result<(), Self::Error>;
    /// Retires, from `at`, every audit key that has no end yet.
    async fn retire_audit_keys(&self, at: Timestamp) -> Result<(), Self::Error>;
    /// Records the one-time value `key` until `until`; false if it is already
    /// recorded and not expired at `now` (a replay).
    async fn first_use(&self, key: &[u8; 32], until: Timestamp, now: Timestamp) -> Result<bool, Self::Error>;
    /// Announces, if this transaction commits, that the grant or pairing `id` was decided.
    async fn announce_decided(&self, id: &str) -> Result<(), Self::Error>;

    // ---- users ----

    /// The user's sign-in name.
    async fn username(&self, user_id: &str) -> Result<String, Self::Error>;
    /// Holds the owner's row, so registrations for one owner take turns.
    async fn lock_owner(&self, owner_id: &str) -> Result<(), Self::Error>;
    /// An account's status; with `lock`, held so a concurrent disable waits for
    /// this transaction (or this one reads the committed disable).
    async fn account(&self, user_id: &str, lock: bool) -> Result<Option<AccountStatus>, Self::Error>;
    /// Every account, by name.
    async fn users(&self) -> Result<Vec<UserRecord>, Self::Error>;
    /// One account by ID.
    async fn user(&self, user_id: &str) -> Result<Option<UserRecord>, Self::Error>;
    /// Disables (with a time) or enables (`None`) an account; false when there is none.
    async fn set_user_disabled(&self, user_id: &str, at: Option<Timestamp>) -> Result<bool, Self::Error>;
    /// An account's current run of wrong passwords.
    async fn failure_run(&self, user_id: &str) -> Result<Option<FailureRun>, Self::Error>;
    /// Stores an account's run of wrong passwords.
    async fn set_failure_run(&self, user_id: &str, run: FailureRun) -> Result<(), Self::Error>;
    /// Locks an account until `until`, or lifts its lock (`None`).
    async fn set_locked_until(&self, user_id: &str, until: Option<Timestamp>) -> Result<(), Self::Error>;
    /// Records that `network` gave a wrong password for the account at `now`.
    async fn add_network_failure(&self, user_id: &str, network: &str, now: Timestamp) -> Result<(), Self::Error>;
    /// Forgets the account's network failures from before `before`.
    async fn prune_network_failures(&self, user_id: &str, before: Timestamp) -> Result<(), Self::Error>;
    /// When `network` last gave a wrong password for the account, if it did.
    async fn network_failed_at(&self, user_id: &str, network: &str) -> Result<Option<Timestamp>, Self::Error>;
    /// Forgets every network failure of the account.
    async fn clear_network_failures(&self, user_id: &str) -> Result<(), Self::Error>;
    /// Deletes an account and, by cascade, everything it held; false when there is none.
    async fn delete_user(&self, user_id: &str) -> Result<bool, Self::Error>;
    /// Stores a new password hash; false when there is no such account.
    async fn set_password(&self, user_id: &str, password_hash: &str) -> Result<bool, Self::Error>;
    /// Ends an account's sessions, except the one with hash `keep`; returns how many.
    async fn delete_sessions_of(&self, user_id: &str, keep: Option<&SecretHash>) -> Result<u64, Self::Error>;
    /// Revokes an account's live token families; returns how many.
    async fn revoke_families_of(&self, user_id: &str, now: Timestamp) -> Result<u64, Self::Error>;
    /// Denies an account's approved, uncollected grants; returns how many.
    async fn deny_approved_grants_of(&self, user_id: &str) -> Result<u64, Self::Error>;
    /// Cancels an account's approved, uncollected QR sign-ins; returns how many.
    async fn cancel_approved_pairings_of(&self, user_id: &str) -> Result<u64, Self::Error>;
    /// Revokes an account's live enrollment keys; returns how many.
    async fn revoke_enrollment_keys_of(&self, user_id: &str, now: Timestamp) -> Result<u64, Self::Error>;

    // ---- device grants ----

    /// Inserts a new grant; [`StoreError::Conflict`] when a code is taken.
    async fn insert_grant(&self, grant: &NewDeviceGrant, now: Timestamp) -> Result<(), Self::Error>;
    /// The grant behind a code.
    async fn grant(
        &self,
        code: GrantCode,
        hash: &SecretHash,
        lock: bool,
    ) -> Result<Option<DeviceGrantRecord>, Self::Error>;
    /// Stores a decision on a pending grant.
    async fn set_grant_decided(&self, grant: &DeviceGrantRecord) -> Result<(), Self::Error>;
    /// Stores a poll's time and the (possibly longer) interval.
    async fn set_grant_polled(&self, id: &str, interval_secs: i64, now: Timestamp) -> Result<(), Self::Error>;
    /// Marks an approved grant consumed; false when it was no longer approved.
    async fn set_grant_consumed(&self, id: &str) -> Result<bool, Self::Error>;

    // ---- devices ----

    /// One device.
    async fn device(&self, id: &str, lock: bool) -> Result<Option<DeviceRecord>, Self::Error>;
    /// A device's status alone.
    async fn device_status(&self, id: &str) -> Result<Option<DeviceStatus>, Self::Error>;
    /// The owner's active device holding the key with thumbprint `jkt`, newest first.
    async fn active_device_with_key(&self, owner_id: &str, jkt: &str) -> Result<Option<DeviceRecord>, Self::Error>;
    /// How many active devices the owner has.
    async fn active_device_count(&self, owner_id: &str) -> Result<i64, Self::Error>;
    /// Every slug the owner's devices ever had.
    async fn device_slugs(&self, owner_id: &str) -> Result<HashSet<String>, Self::Error>;
    /// Whether one of the owner's devices ever had `slug`.
    async fn slug_taken(&self, owner_id: &str, slug: &str) -> Result<bool, Self::Error>;
    /// Inserts a device; [`StoreError::Conflict`] when its ID or slug is taken.
    async fn insert_device(&self, device: &DeviceRecord) -> Result<(), Self::Error>;
    /// Adds a row to a device's location history.
    async fn add_location(&self, device_id: &str, location: Option<&str>, now: Timestamp) -> Result<(), Self::Error>;
    /// Stores a device's display name.
    async fn set_device_name(&self, id: &str, name: &str) -> Result<(), Self::Error>;
    /// Stores a device's current location.
    async fn set_device_location(&self, id: &str, location: Option<&str>) -> Result<(), Self::Error>;
    /// Marks a device revoked.
    async fn set_device_revoked(&self, id: &str, now: Timestamp) -> Result<(), Self::Error>;
    /// Records that a device used its tokens.
    async fn touch_device(&self, id: &str, now: Timestamp) -> Result<(), Self::Error>;

    // ---- token families and refresh tokens ----

    /// Inserts a token family.
    async fn insert_family(&self, family: &NewFamily<'_>, now: Timestamp) -> Result<(), Self::Error>;
    /// Inserts a refresh token into `family_id`.
    async fn insert_refresh_token(
        &self,
        token: &NewRefreshToken,
        family_id: &str,
        now: Timestamp,
    ) -> Result<(), Self::Error>;
    /// A refresh token with its family, and the family's `auth_time`.
    async fn refresh_token(
        &self,
        hash: &SecretHash,
        lock: bool,
    ) -> Result<Option<(RefreshTokenRecord, Timestamp)>, Self::Error>;
    /// Marks every live refresh token of a family as exchanged.
    async fn set_family_tokens_rotated(&self, family_id: &str, now: Timestamp) -> Result<(), Self::Error>;
    /// Marks a refresh token as exchanged.
    async fn set_refresh_rotated(&self, hash: &SecretHash, now: Timestamp) -> Result<(), Self::Error>;
    /// The owner of a live family issued to `client_id`.
    async fn live_family_owner(&self, family_id: &str, client_id: &str) -> Result<Option<String>, Self::Error>;
    /// Revokes a family if live; returns whether it was.
    async fn set_family_revoked(&self, family_id: &str, now: Timestamp) -> Result<bool, Self::Error>;
    /// Holds every family of a device, in a fixed order.
    async fn lock_device_families(&self, device_id: &str) -> Result<(), Self::Error>;
    /// Revokes every live family of a device; returns how many.
    async fn set_device_families_revoked(&self, device_id: &str, now: Timestamp) -> Result<u64, Self::Error>;
    // ---- events ----

    /// An app's event kind; with `lock`, held against a concurrent declaration.
    async fn event_kind(&self, client_id: &str, name: &str, lock: bool)
        -> Result<Option<EventKindRecord>, Self::Error>;
    /// Stores a new event kind.
    async fn insert_event_kind(&self, kind: &EventKindRecord, now: Timestamp) -> Result<(), Self::Error>;
    /// Changes a kind's retention.
    async fn set_event_kind_retention(&self, client_id: &str, name: &str, secs: Option<i64>)
        -> Result<(), Self::Error>;
    /// An app's event kinds, by name.
    async fn event_kinds(&self, client_id: &str) -> Result<Vec<EventKindRecord>, Self::Error>;
    /// Makes sure the user's stream head exists.
    async fn ensure_event_head(&self, user_id: &str) -> Result<(), Self::Error>;
    /// The last number handed out in the user's stream; with `lock`, held until commit.
    async fn event_head(&self, user_id: &str, lock: bool) -> Result<i64, Self::Error>;
    /// Stores the last number handed out.
    async fn set_event_head(&self, user_id: &str, seq: i64) -> Result<(), Self::Error>;
    /// Inserts an event at `seq` unless its ID is stored; whether it was inserted.
    async fn insert_event(&self, event: &NewEvent<'_>, seq: i64, now: Timestamp) -> Result<bool, Self::Error>;
    /// Inserts events, each at its `seq`, skipping IDs already stored, in as
    /// few round trips as the backend needs; the IDs inserted.
    async fn insert_events(&self, events: &[(NewEvent<'_>, i64)], now: Timestamp) -> Result<Vec<String>, Self::Error>;
    /// Moves an event to a new place in the stream (it changed).
    async fn set_event_seq(&self, id: &str, seq: i64) -> Result<(), Self::Error>;
    /// A stored event's observers.
    async fn event_observers(&self, id: &str) -> Result<Option<latchkey_domain::events::Observers>, Self::Error>;
    /// Replaces an event's observers, moving it to `seq` in the stream.
    async fn set_event_observers(
        &self,
        id: &str,
        observers: &latchkey_domain::events::Observers,
        seq: i64,
    ) -> Result<(), Self::Error>;
    /// Records the part of an interval event a device captured; whether it is new.
    async fn add_part(
        &self,
        event_id: &str,
        device_id: &str,
        interval: latchkey_domain::events::Interval,
    ) -> Result<bool, Self::Error>;
    /// A series' live events and their intervals.
    async fn series_events(
        &self,
        series: &str,
    ) -> Result<Vec<(String, latchkey_domain::events::Interval)>, Self::Error>;
    /// Widens an interval event and replaces its observers, at `seq`.
    async fn set_event_interval(
        &self,
        id: &str,
        interval: latchkey_domain::events::Interval,
        observers: &latchkey_domain::events::Observers,
        seq: i64,
    ) -> Result<(), Self::Error>;
    /// Marks an event merged into another, at `seq`.
    async fn set_merged_into(&self, id: &str, into: &str, seq: i64) -> Result<(), Self::Error>;
    /// Copies an event's parts to another.
    async fn move_parts(&self, from: &str, to: &str) -> Result<(), Self::Error>;
    /// A user's events of one app changed after `after`, in stream order, at most `limit` (parts empty).
    async fn events_after(
        &self,
        user_id: &str,
        client_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, Self::Error>;
    /// Parts of the user's events changed in `(after, last]`, by event ID.
    async fn parts_between(
        &self,
        user_id: &str,
        after: i64,
        last: i64,
    ) -> Result<Vec<(String, EventPart)>, Self::Error>;

    /// A user's live sign-ins that are not devices (see [`crate::sql::SIGN_INS`]).
    async fn sign_ins(
        &self,
        user_id: &str,
        live_since: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<SignInRecord>, Self::Error>;
    /// Ends one of a user's sessions by ID; whether there was one.
    async fn delete_session_of(&self, id: &str, user_id: &str) -> Result<bool, Self::Error>;
    /// Revokes one of a user's live device-less families; its app, if there was one.
    async fn revoke_web_family(&self, id: &str, user_id: &str, now: Timestamp) -> Result<Option<String>, Self::Error>;
    /// Whether a family is unrevoked, and its account's status.
    async fn family_liveness(&self, family_id: &str) -> Result<Option<(bool, AccountStatus)>, Self::Error>;

    // ---- web sign-in: authorization codes and consent ----

    /// Stores an authorization code.
    async fn insert_authorization_code(&self, code: &NewAuthorizationCode, now: Timestamp) -> Result<(), Self::Error>;
    /// The code behind a hash (locked for update when `lock`).
    async fn authorization_code(
        &self,
        hash: &SecretHash,
        lock: bool,
    ) -> Result<Option<AuthorizationCodeRecord>, Self::Error>;
    /// Marks a code redeemed with the family it started; false when it was already.
    async fn set_code_used(&self, hash: &SecretHash, family_id: &str, now: Timestamp) -> Result<bool, Self::Error>;
    /// Revokes one account's live device-less (web) families of one app; how many.
    async fn revoke_app_families_of(&self, user_id: &str, client_id: &str, now: Timestamp) -> Result<u64, Self::Error>;
    /// One person's consent for one app.
    async fn consent(&self, user_id: &str, client_id: &str) -> Result<Option<ConsentRecord>, Self::Error>;
    /// A person's consents, newest first.
    async fn consents_of(&self, user_id: &str) -> Result<Vec<ConsentRecord>, Self::Error>;
    /// Records or replaces a consent.
    async fn upsert_consent(&self, c: &ConsentRecord) -> Result<(), Self::Error>;
    /// Deletes a consent; whether there was one.
    async fn delete_consent(&self, user_id: &str, client_id: &str) -> Result<bool, Self::Error>;

    // ---- passkeys and WebAuthn ceremonies ----

    /// A person's passkeys, oldest first.
    async fn passkeys_of(&self, user_id: &str) -> Result<Vec<PasskeyRecord>, Self::Error>;
    /// The passkey with this credential ID, whoever holds it.
    async fn passkey_by_credential(&self, credential_id: &str) -> Result<Option<PasskeyRecord>, Self::Error>;
    /// Stores a passkey; [`StoreError::Conflict`] when its credential is registered already.
    async fn insert_passkey(&self, p: &NewPasskey, now: Timestamp) -> Result<(), Self::Error>;
    /// Removes one of a person's passkeys; its name, if there was one.
    async fn delete_passkey(&self, id: &str, user_id: &str) -> Result<Option<String>, Self::Error>;
    /// How many passkeys a person has.
    async fn count_passkeys(&self, user_id: &str) -> Result<i64, Self::Error>;
    /// Stores a passkey's state after a sign-in; false when it is no longer the person's.
    async fn set_passkey_used(
        &self,
        id: &str,
        user_id: &str,
        passkey: &str,
        now: Timestamp,
    ) -> Result<bool, Self::Error>;
    /// Stores a ceremony's state.
    async fn insert_ceremony(&self, c: &NewCeremony, now: Timestamp) -> Result<(), Self::Error>;
    /// Takes (deletes and returns) a live ceremony of `kind`.
    async fn take_ceremony(
        &self,
        id_hash: &SecretHash,
        kind: latchkey_domain::passkey::CeremonyKind,
        now: Timestamp,
    ) -> Result<Option<CeremonyRecord>, Self::Error>;
    /// Stores a new session (its audit entry is the caller's).
    async fn insert_web_session(&self, s: &NewSession, now: Timestamp) -> Result<(), Self::Error>;

    // ---- QR sign-in pairings ----

    /// Inserts a pairing; [`StoreError::Conflict`] when a code is taken.
    async fn insert_pairing(&self, pairing: &NewPairing, now: Timestamp) -> Result<(), Self::Error>;
    /// The pairing behind a secret.
    async fn pairing(
        &self,
        code: PairingCode,
        hash: &SecretHash,
        lock: bool,
    ) -> Result<Option<PairingRecord>, Self::Error>;
    /// Moves a pairing from `from` to `to` (recording the decider, if any); false when it was not at `from`.
    async fn set_pairing_status(
        &self,
        id: &str,
        from: PairingStatus,
        to: PairingStatus,
        decided_by: Option<&str>,
        now: Timestamp,
    ) -> Result<bool, Self::Error>;

    // ---- enrollment keys ----

    /// Inserts an enrollment key; [`StoreError::Conflict`] when its ID is taken.
    async fn insert_enrollment_key(&self, key: &NewEnrollmentKey, now: Timestamp) -> Result<(), Self::Error>;
    /// The key behind a presented secret.
    async fn usable_key(&self, hash: &SecretHash, lock: bool) -> Result<Option<UsableKey>, Self::Error>;
    /// Counts one use of a key, only if reusable or unused; false otherwise.
    async fn count_key_use(&self, id: &str) -> Result<bool, Self::Error>;
    /// Revokes a live key (only `owner_id`'s when given); false when none was.
    async fn set_key_revoked(&self, id: &str, owner_id: Option<&str>, now: Timestamp) -> Result<bool, Self::Error>;

    // ---- trusted devices ----

    /// The owner's devices with this slug, newest first.
    async fn devices_with_slug(&self, owner_id: &str, slug: &str) -> Result<Vec<DeviceRecord>, Self::Error>;
    /// A device's key replacements, oldest first.
    async fn rotations(&self, device_id: &str) -> Result<Vec<RotationRecord>, Self::Error>;
    /// Records a key replacement.
    async fn insert_rotation(&self, device_id: &str, r: &RotationRecord, now: Timestamp) -> Result<(), Self::Error>;
    /// Replaces a device's key (JWK text and thumbprint).
    async fn set_device_key(&self, device_id: &str, jwk: &str, jkt: &str) -> Result<(), Self::Error>;
    /// A device's published session key.
    async fn session_key(&self, device_id: &str) -> Result<Option<SessionKeyRecord>, Self::Error>;
    /// Publishes or replaces a device's session key.
    async fn upsert_session_key(
        &self,
        device_id: &str,
        k: &SessionKeyRecord,
        now: Timestamp,
    ) -> Result<(), Self::Error>;
    /// Stores or replaces a trust statement, signed with `truster_key`.
    async fn upsert_trust(&self, t: &NewTrust, truster_key: &str, now: Timestamp) -> Result<(), Self::Error>;
    /// Removes a trust statement; whether there was one.
    async fn delete_trust(&self, truster: &str, trustee: &str) -> Result<bool, Self::Error>;
    /// Removes every statement by or about a device; how many.
    async fn delete_trusts_of_device(&self, device_id: &str) -> Result<u64, Self::Error>;
    /// Every statement between the user's devices (`holds` not computed).
    async fn trusts_of_user(&self, user_id: &str) -> Result<Vec<TrustRecord>, Self::Error>;
    /// How many channels the device holds that were seen since `since`.
    async fn channel_count(&self, device_id: &str, since: Timestamp) -> Result<i64, Self::Error>;
    /// Opens a channel.
    async fn insert_channel(&self, id: &str, device_id: &str, now: Timestamp) -> Result<(), Self::Error>;
    /// Marks a channel seen.
    async fn touch_channel(&self, id: &str, now: Timestamp) -> Result<(), Self::Error>;
    /// Closes a channel.
    async fn delete_channel(&self, id: &str) -> Result<(), Self::Error>;

    // ---- trusted sessions ----

    /// Stores a new session (members separately).
    async fn insert_session(&self, s: &TrustedSessionRecord) -> Result<(), Self::Error>;
    /// One session without its members; with `lock`, held until commit.
    async fn session(&self, id: &str, lock: bool) -> Result<Option<TrustedSessionRecord>, Self::Error>;
    /// The open sessions a device is a current member of (members not loaded).
    async fn sessions_of_device(
        &self,
        device_id: &str,
        now: Timestamp,
    ) -> Result<Vec<TrustedSessionRecord>, Self::Error>;
    /// Open sessions past their end at `now`, at most `limit` (members not loaded).
    async fn expired_sessions(&self, now: Timestamp, limit: i64) -> Result<Vec<TrustedSessionRecord>, Self::Error>;
    /// Sets a session's key generation and whether a new key is needed.
    async fn set_session_epoch(&self, id: &str, epoch: u32, rekey_needed: bool) -> Result<(), Self::Error>;
    /// Closes a session; whether it was open.
    async fn close_session(&self, id: &str, now: Timestamp) -> Result<bool, Self::Error>;
    /// Adds a member.
    async fn insert_member(
        &self,
        session_id: &str,
        device_id: &str,
        status: &str,
        joined_epoch: Option<u32>,
        now: Timestamp,
    ) -> Result<(), Self::Error>;
    /// A session's members: device, status, the generation it joined at.
    async fn members(&self, session_id: &str) -> Result<Vec<(String, String, Option<i64>)>, Self::Error>;
    /// Changes a member's status; whether it is a member.
    async fn set_member(
        &self,
        session_id: &str,
        device_id: &str,
        status: &str,
        joined_epoch: Option<u32>,
        now: Timestamp,
    ) -> Result<bool, Self::Error>;
    /// Open sessions in which the device is a current member.
    async fn open_sessions_with_member(&self, device_id: &str) -> Result<Vec<String>, Self::Error>;
    /// How many open sessions the device is invited to and has not joined.
    async fn invited_count(&self, device_id: &str) -> Result<i64, Self::Error>;
    /// Stores an invitation; [`StoreError::Conflict`] when its nonce was ever used.
    async fn insert_invitation(
        &self,
        inv: &latchkey_domain::trusted_session::SignedInvitation,
    ) -> Result<(), Self::Error>;
    /// An invitation's state by nonce.
    async fn invitation(&self, nonce: &str) -> Result<Option<InvitationState>, Self::Error>;
    /// Uses an invitation; false when it was used already.
    async fn use_invitation(&self, nonce: &str, now: Timestamp) -> Result<bool, Self::Error>;
    /// The device's invitations still to accept.
    async fn pending_invitations(
        &self,
        device_id: &str,
        now: Timestamp,
    ) -> Result<Vec<latchkey_domain::trusted_session::SignedInvitation>, Self::Error>;
    /// Whether the member has an invitation to accept at the session's current key.
    async fn has_pending_invitation(
        &self,
        session_id: &str,
        device_id: &str,
        now: Timestamp,
    ) -> Result<bool, Self::Error>;
    /// Makes sure the user's log head exists.
    async fn ensure_log_head(&self, user_id: &str) -> Result<(), Self::Error>;
    /// The last position handed out in the user's log; with `lock`, held until commit.
    async fn log_head(&self, user_id: &str, lock: bool) -> Result<i64, Self::Error>;
    /// Stores the last position handed out.
    async fn set_log_head(&self, user_id: &str, pos: i64) -> Result<(), Self::Error>;
    /// Appends an entry to the user's log.
    async fn insert_log(&self, user_id: &str, entry: &LogEntry, now: Timestamp) -> Result<(), Self::Error>;
    /// A member's last message number, across key generations (0 if none).
    async fn member_seq(&self, session_id: &str, device_id: &str) -> Result<i64, Self::Error>;
    /// Stores a member's last message number.
    async fn set_member_seq(&self, session_id: &str, device_id: &str, seq: i64) -> Result<(), Self::Error>;
    /// Keeps only a session's newest `keep` messages; how many were dropped.
    async fn prune_log(&self, session_id: &str, keep: i64) -> Result<u64, Self::Error>;
    /// Records the oldest message the session still keeps.
    async fn set_pruned(&self, session_id: &str) -> Result<(), Self::Error>;
    /// What the device may see of its user's log after `after`, at most `limit`.
    async fn log_after(
        &self,
        device_id: &str,
        user_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<LogEntry>, Self::Error>;
    /// The newest point before which messages were dropped, over the sessions the device joined (0: none).
    async fn channel_gap(&self, device_id: &str) -> Result<i64, Self::Error>;

    // ---- activity ----

    /// The user's device sign-ins since `since`, per device and UTC day.
    async fn device_sign_ins_by_day(&self, user_id: &str, since: Timestamp) -> Result<Vec<DaySignIns>, Self::Error>;
    /// Device-login audit entries since `since`: (kind, hour since the epoch, count).
    async fn logins_by_hour(&self, since: Timestamp) -> Result<Vec<(String, i64, i64)>, Self::Error>;
    /// Undecided device logins requested in [`since`, `before`): (hour since the epoch, count).
    async fn expired_logins_by_hour(&self, since: Timestamp, before: Timestamp)
        -> Result<Vec<(i64, i64)>, Self::Error>;
    /// How many devices are active and how many accounts enabled.
    async fn active_totals(&self) -> Result<(i64, i64), Self::Error>;
}
