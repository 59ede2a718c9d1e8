//! The storage interface of Latchkey.
//!
//! One trait, [`Store`], with an implementation per backend crate
//! (`latchkey-store-sqlite`, `latchkey-store-postgres`). Operations are
//! whole domain actions, each one transaction that includes its audit entry,
//! so no caller can leave half a change behind. Transitions are decided by
//! `latchkey-domain`; the operations that execute them are written once, in
//! [`flows`], against [`txn::Txn`]; backends only load, execute and write.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod activity;
pub mod at_rest;
mod audit_records;
mod dispatch;
mod error;
pub mod events;
pub mod flows;
mod ids;
mod notify;
mod passkey_records;
mod records;
pub mod rows;
pub mod sql;
pub mod sql_trust;
#[cfg(feature = "testsuite")]
pub mod testsuite;
mod trust_records;
pub mod txn;

pub use activity::{DaySignIns, HourCount, LoginOutcome, LoginOverview};
pub use at_rest::{KeyVault, KeysSecured, StoredAuditKey, StoredSigningKey};
pub use audit_records::*;
pub use error::StoreError;
pub use ids::{Actor, AppId, DeviceId, EnrollmentKeyId, FamilyId, UserId};
pub use notify::{DecisionNotifier, DecisionWait};
pub use passkey_records::*;
pub use records::*;
pub use trust_records::*;

use async_trait::async_trait;
use latchkey_domain::audit::{AuditEntry, AuditEvent, ChainHead};
use latchkey_domain::secret::SecretHash;
use latchkey_domain::Timestamp;

/// What [`impl_store!`] names from other crates, so backends need not depend on them.
#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
    pub use latchkey_domain::account::{AccountRefusal, LockPolicy};
    pub use latchkey_domain::at_rest::SecretKey;
    pub use latchkey_domain::audit::{AuditEntry, AuditEvent, ChainHead};
    pub use latchkey_domain::merkle::{Hash, ProofError};
    pub use latchkey_domain::passkey::CeremonyKind;
    pub use latchkey_domain::secret::SecretHash;
    pub use latchkey_domain::trusted_session::{Descriptor, SignedInvitation};
    pub use latchkey_domain::Timestamp;
}

/// Result of a storage call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Everything Latchkey keeps. Each method is one transaction.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- users ----

    /// Creates a user and records `user.created` by `actor`. Fails with [`StoreError::Conflict`] if the name is taken.
    async fn create_user(&self, user: NewUser, actor: Option<String>, now: Timestamp) -> StoreResult<UserRecord>;
    /// Finds a user by (normalised) username.
    async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    /// How many users exist (to know whether setup is needed).
    async fn count_users(&self) -> StoreResult<i64>;
    /// Every account, by name.
    async fn users(&self) -> StoreResult<Vec<UserRecord>>;
    /// Disables (`true`) or enables an account and records it. A disabled account gets
    /// nothing by any path until enabled; enabling also lifts a lock and forgets
    /// wrong passwords. `None` if there is no such account.
    async fn set_user_disabled(
        &self,
        user: UserId<'_>,
        disabled: bool,
        actor: Actor<'_>,
        now: Timestamp,
    ) -> StoreResult<Option<UserRecord>>;
    /// Records a wrong password for an existing account from `network` (a
    /// [`network key`](latchkey_domain::rate_limit)); under `policy` it may lock
    /// the account, recorded as `user.locked`. Until when, if this failure locked it.
    async fn record_sign_in_failure(
        &self,
        user: UserId<'_>,
        network: &str,
        failure: AuditEvent,
        policy: latchkey_domain::account::LockPolicy,
        now: Timestamp,
    ) -> StoreResult<Option<Timestamp>>;
    /// Records a correct password from `network`: clears the failures and lifts a lock
    /// if `network` has no recent failure for the account. Whether a lock was lifted,
    /// or why the account may not act (disabled, or locked and this network may not lift it).
    async fn record_sign_in_success(
        &self,
        user: UserId<'_>,
        network: &str,
        policy: latchkey_domain::account::LockPolicy,
        now: Timestamp,
    ) -> StoreResult<Result<bool, latchkey_domain::account::AccountRefusal>>;
    /// Deletes an account and everything it held, and records it. Whether there was one.
    async fn delete_user(&self, user: UserId<'_>, actor: Actor<'_>, now: Timestamp) -> StoreResult<bool>;
    /// Stores a new password hash and ends every session but `keep`, and records it.
    /// Whether there was such an account.
    async fn change_password(
        &self,
        user: UserId<'_>,
        password_hash: &str,
        keep: Option<&SecretHash>,
        actor: Actor<'_>,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Ends everything an account holds at once (sessions, token families, approved
    /// grants and QR sign-ins not yet collected, enrollment keys) and records what.
    /// `None` if there is no such account.
    async fn revoke_everything(
        &self,
        user: UserId<'_>,
        actor: Actor<'_>,
        now: Timestamp,
    ) -> StoreResult<Option<RevokedAll>>;

    // ---- sessions ----

    /// Stores a new session and records the successful sign-in.
    async fn create_session(&self, session: NewSession, now: Timestamp) -> StoreResult<()>;
    /// The live session with this token hash and its user, if the user may act at `now`.
    async fn session(&self, token_hash: &SecretHash, now: Timestamp) -> StoreResult<Option<SessionRecord>>;
    /// Ends a session (sign-out) and records it. Returns whether one was ended.
    async fn delete_session(&self, token_hash: &SecretHash, now: Timestamp) -> StoreResult<bool>;

    // ---- apps ----

    /// Registers an app and records `app.created`.
    async fn create_app(&self, app: AppRecord, actor: Option<String>, now: Timestamp) -> StoreResult<()>;
    /// Looks an app up by client ID.
    async fn app(&self, client_id: AppId<'_>) -> StoreResult<Option<AppRecord>>;
    /// Every app, by client ID.
    async fn list_apps(&self) -> StoreResult<Vec<AppRecord>>;
    /// Changes an app's settings and records `app.updated`. `None` if there is no such app.
    async fn update_app(
        &self,
        client_id: AppId<'_>,
        update: AppUpdate,
        actor: Actor<'_>,
        now: Timestamp,
    ) -> StoreResult<Option<AppRecord>>;

    // ---- web sign-in (authorization code with PKCE) ----

    /// Stores an authorization code for a person whose account may sign in;
    /// records their consent (audited) in the same transaction when given now.
    async fn issue_authorization_code(
        &self,
        code: NewAuthorizationCode,
        consent: Option<ConsentRecord>,
        now: Timestamp,
    ) -> StoreResult<Result<(), latchkey_domain::account::AccountRefusal>>;
    /// Redeems a code at the token endpoint: once; a second time revokes what the first issued.
    async fn redeem_authorization_code(&self, redeem: RedeemCode, now: Timestamp) -> StoreResult<CodeRedeemed>;
    /// A person's standing consent for an app.
    async fn consent(&self, user: UserId<'_>, app: AppId<'_>) -> StoreResult<Option<ConsentRecord>>;
    /// Every app a person has consented to, newest first.
    async fn consents_of(&self, user: UserId<'_>) -> StoreResult<Vec<ConsentRecord>>;
    /// Withdraws a consent and ends that app's web sign-ins of the person; how
    /// many ended, or `None` when there was no consent.
    async fn withdraw_consent(&self, user: UserId<'_>, app: AppId<'_>, now: Timestamp) -> StoreResult<Option<u64>>;

    // ---- passkeys (WebAuthn) ----

    /// A person's passkeys, oldest first.
    async fn passkeys(&self, user: UserId<'_>) -> StoreResult<Vec<PasskeyRecord>>;
    /// The passkey with this credential ID (base64url), whoever holds it.
    async fn passkey_by_credential(&self, credential_id: &str) -> StoreResult<Option<PasskeyRecord>>;
    /// Keeps a ceremony's challenge state until it is answered or expires (not audited: nothing changed yet).
    async fn start_ceremony(&self, ceremony: NewCeremony, now: Timestamp) -> StoreResult<()>;
    /// Takes a live ceremony of `kind` for answering; it cannot be taken again.
    async fn take_ceremony(
        &self,
        id_hash: &SecretHash,
        kind: latchkey_domain::passkey::CeremonyKind,
        now: Timestamp,
    ) -> StoreResult<Option<CeremonyRecord>>;
    /// Registers a verified passkey and records `passkey.added`;
    /// [`StoreError::Conflict`] when the credential is registered already.
    async fn add_passkey(&self, passkey: NewPasskey, now: Timestamp) -> StoreResult<Result<(), PasskeyRefusal>>;
    /// Removes one of a person's passkeys (never their last way in) and records `passkey.removed`.
    async fn remove_passkey(
        &self,
        user: UserId<'_>,
        passkey_id: &str,
        now: Timestamp,
    ) -> StoreResult<Result<(), PasskeyRefusal>>;
    /// Removes a person's password once they hold a passkey, and records
    /// `user.password_removed`; a passkey that confirmed it has its new state
    /// stored in the same transaction (refused if it was removed meanwhile).
    async fn remove_password(
        &self,
        user: UserId<'_>,
        confirmed_with: Option<PasskeyUse>,
        now: Timestamp,
    ) -> StoreResult<Result<(), PasskeyRefusal>>;
    /// Records a verified passkey sign-in (the passkey's new state, the session,
    /// `signin.succeeded`) and returns who signed in.
    async fn sign_in_with_passkey(
        &self,
        sign_in: PasskeySignIn,
        now: Timestamp,
    ) -> StoreResult<Result<UserRecord, PasskeyRefusal>>;

    // ---- QR cross-device sign-in ----

    /// Stores a new pairing and records `qr.requested`.
    async fn create_pairing(&self, pairing: NewPairing, now: Timestamp) -> StoreResult<()>;
    /// The pairing behind the phone's one-time code.
    async fn pairing_by_phone_code(&self, phone_code_hash: &SecretHash) -> StoreResult<Option<PairingRecord>>;
    /// The pairing behind the desktop's secret.
    async fn pairing_by_desktop_secret(&self, desktop_secret_hash: &SecretHash) -> StoreResult<Option<PairingRecord>>;
    /// The phone approves (`approve`) or denies, as `user_id`; records it and wakes the desktop.
    async fn decide_pairing(
        &self,
        phone_code_hash: &SecretHash,
        user_id: UserId<'_>,
        approve: bool,
        now: Timestamp,
    ) -> StoreResult<PairingResult>;
    /// The desktop gives up; records it.
    async fn cancel_pairing(&self, desktop_secret_hash: &SecretHash, now: Timestamp) -> StoreResult<PairingResult>;
    /// The desktop collects an approved pairing: consumed, token family started and
    /// `qr.consumed` recorded in one transaction; exactly one caller wins.
    async fn collect_pairing(
        &self,
        desktop_secret_hash: &SecretHash,
        mint: MintRefresh,
        now: Timestamp,
    ) -> StoreResult<Collected>;
    /// The desktop's browser collects an approved QR sign-in that continues a web
    /// sign-in: consumed, a browser session opened for its approver, and both
    /// recorded, in one transaction; exactly one caller wins.
    async fn collect_pairing_session(
        &self,
        desktop_secret_hash: &SecretHash,
        seed: SessionSeed,
        now: Timestamp,
    ) -> StoreResult<Collected>;

    // ---- RFC 8628 device grants ----

    /// Stores a new pending grant and records `grant.requested`.
    async fn create_device_grant(&self, grant: NewDeviceGrant, now: Timestamp) -> StoreResult<()>;
    /// The grant a user code points at (for the verification page).
    async fn device_grant_by_user_code(&self, user_code_hash: &SecretHash) -> StoreResult<Option<DeviceGrantRecord>>;
    /// Approves or denies the grant behind a user code, records it, and wakes waiters.
    async fn decide_device_grant(&self, decision: GrantDecision, now: Timestamp) -> StoreResult<DecideResult>;
    /// Redeems a device code: a poll or an instant-endpoint check. On `Ready`
    /// the grant is consumed, `mint` stored and `grant.consumed` recorded, all
    /// at once, so of any number of concurrent callers exactly one gets tokens.
    async fn redeem_device_grant(&self, redeem: Redeem, now: Timestamp) -> StoreResult<Redeemed>;

    // ---- tokens ----

    /// Exchanges a refresh token for `mint`; a rotated token presented again revokes its family.
    async fn rotate_refresh_token(&self, rotate: RotateRefresh, now: Timestamp) -> StoreResult<Rotated>;
    /// Revokes the family of a refresh token issued to `client_id`. Returns whether anything was revoked.
    async fn revoke_refresh_family(
        &self,
        token_hash: &SecretHash,
        client_id: AppId<'_>,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Revokes a token family by ID (an access token's `sid`) if it was issued to `client_id`.
    async fn revoke_family(&self, family_id: FamilyId<'_>, client_id: AppId<'_>, now: Timestamp) -> StoreResult<bool>;
    /// Looks up a refresh token (for introspection).
    async fn refresh_token(&self, token_hash: &SecretHash) -> StoreResult<Option<RefreshTokenRecord>>;
    /// The app a token-endpoint credential was issued to, if it exists (spent, expired
    /// or revoked ones included): read before a DPoP proof sent with it is recorded.
    async fn issued_to(&self, credential: PresentedCredential) -> StoreResult<Option<String>>;
    /// The user's live sign-ins that are not devices (browser sessions, and app sign-ins
    /// such as QR sign-ins), newest first. An app sign-in without a working refresh
    /// token counts while started since `live_since` (its access tokens may still work).
    async fn sign_ins(&self, user: UserId<'_>, live_since: Timestamp, now: Timestamp)
        -> StoreResult<Vec<SignInRecord>>;
    /// Ends one of the user's sign-ins that are not devices, at once, and records that
    /// `actor` did. Which kind it was, or `None` if the user has no such live sign-in.
    async fn end_sign_in(
        &self,
        user: UserId<'_>,
        id: &str,
        actor: Actor<'_>,
        now: Timestamp,
    ) -> StoreResult<Option<SignInKind>>;
    /// Whether a token family still works at `now`: unrevoked, and its account may act
    /// (access tokens carry their family's ID).
    async fn family_active(&self, family_id: FamilyId<'_>, now: Timestamp) -> StoreResult<bool>;

    // ---- devices ----

    /// The owner's devices, newest first.
    async fn devices(&self, owner_id: UserId<'_>) -> StoreResult<Vec<DeviceRecord>>;
    /// One device by ID.
    async fn device(&self, id: DeviceId<'_>) -> StoreResult<Option<DeviceRecord>>;
    /// Renames an owner's device (the slug stays). `None` if there is no such device.
    async fn rename_device(
        &self,
        id: DeviceId<'_>,
        owner_id: UserId<'_>,
        name: &str,
        now: Timestamp,
    ) -> StoreResult<Option<DeviceRecord>>;
    /// Moves an owner's device from now on, keeping the history. `None` if there is no such device.
    async fn relocate_device(
        &self,
        id: DeviceId<'_>,
        owner_id: UserId<'_>,
        location: Option<String>,
        now: Timestamp,
    ) -> StoreResult<Option<DeviceRecord>>;
    /// A device's locations, oldest first.
    async fn location_history(&self, id: DeviceId<'_>) -> StoreResult<Vec<LocationChange>>;
    /// Revokes a device and all its token families at once. `owner_id: None` is an admin acting.
    async fn revoke_device(
        &self,
        id: DeviceId<'_>,
        owner_id: Option<UserId<'_>>,
        actor: Actor<'_>,
        now: Timestamp,
    ) -> StoreResult<RevokeDevice>;

    // ---- enrollment keys ----

    /// Stores an enrollment key and records its creation.
    async fn create_enrollment_key(&self, key: NewEnrollmentKey, now: Timestamp) -> StoreResult<()>;
    /// Keys, newest first; only `owner_id`'s when given.
    async fn enrollment_keys(&self, owner_id: Option<UserId<'_>>) -> StoreResult<Vec<EnrollmentKeyRecord>>;
    /// Revokes a key (only `owner_id`'s when given). Returns whether one was revoked.
    async fn revoke_enrollment_key(
        &self,
        id: EnrollmentKeyId<'_>,
        owner_id: Option<UserId<'_>>,
        actor: Actor<'_>,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Uses a key: creates the device and its first token family in one transaction.
    async fn enroll_device(&self, enroll: Enroll, now: Timestamp) -> StoreResult<Enrolled>;

    // ---- multi-machine sync: events ----

    /// Declares an app's event kind and records it; its identity never changes once declared.
    async fn declare_event_kind(
        &self,
        kind: EventKindRecord,
        actor: Actor<'_>,
        now: Timestamp,
    ) -> StoreResult<DeclaredKind>;
    /// One of an app's event kinds.
    async fn event_kind(&self, client_id: AppId<'_>, name: &str) -> StoreResult<Option<EventKindRecord>>;
    /// An app's event kinds, by name.
    async fn event_kinds(&self, client_id: AppId<'_>) -> StoreResult<Vec<EventKindRecord>>;
    /// Stores a device's captures in its user's stream, each logical event once,
    /// and wakes the user's waiting pulls. One result per capture, in order.
    async fn ingest_events(&self, batch: IngestBatch, now: Timestamp) -> StoreResult<Vec<Ingested>>;
    /// The user's stream of one app's events after `after`, at most `limit`.
    async fn pull_events(&self, user: UserId<'_>, client_id: AppId<'_>, after: i64, limit: i64) -> StoreResult<Pulled>;

    // ---- trusted devices ----

    /// One of the user's devices with its keys, for another device to trust or seal to.
    async fn device_keys(&self, user: UserId<'_>, device: DeviceId<'_>) -> StoreResult<Option<DeviceKeysRecord>>;
    /// Publishes the calling device's session key, if its device key signed it.
    async fn publish_session_key(
        &self,
        user: UserId<'_>,
        device: DeviceId<'_>,
        key: SessionKeyRecord,
        now: Timestamp,
    ) -> StoreResult<Result<(), TrustRefusal>>;
    /// Stores a device's signed trust in another device's current key, and records it.
    async fn add_trust(&self, trust: NewTrust, now: Timestamp) -> StoreResult<Result<TrustRecord, TrustRefusal>>;
    /// Removes one device's trust in another, takes each out of the sessions the other
    /// made, and records it. Whether there was such a statement.
    async fn remove_trust(
        &self,
        user: UserId<'_>,
        truster: DeviceId<'_>,
        trustee: DeviceId<'_>,
        actor: Actor<'_>,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Every trust statement between the user's devices, with whether each holds.
    async fn trusts(&self, user: UserId<'_>) -> StoreResult<Vec<TrustRecord>>;
    /// Replaces a device's key (trust carries over only with the old key's signature),
    /// ends its old tokens and starts a family bound to the new key; records it.
    async fn rotate_device_key(
        &self,
        rotate: RotateKey,
        now: Timestamp,
    ) -> StoreResult<Result<TokenSubject, TrustRefusal>>;

    // ---- trusted sessions ----

    /// One answer per target of a new session and, if it can be made, what to sign.
    async fn plan_trusted_session(&self, ask: SessionAsk, now: Timestamp) -> StoreResult<SessionPlanned>;
    /// Makes a planned session with the creator's signed invitations, all at once; its
    /// members are checked again (at most `member_limit`, the creator included).
    async fn create_trusted_session(
        &self,
        user: UserId<'_>,
        creator: DeviceId<'_>,
        descriptor: latchkey_domain::trusted_session::Descriptor,
        invitations: Vec<latchkey_domain::trusted_session::SignedInvitation>,
        member_limit: usize,
        now: Timestamp,
    ) -> StoreResult<Result<SessionMade, SessionRefusal>>;
    /// Stores invitations at a session's current key (a new key, or a fresh invitation).
    async fn issue_invitations(
        &self,
        user: UserId<'_>,
        issue: Issue,
        now: Timestamp,
    ) -> StoreResult<Result<(), SessionRefusal>>;
    /// Accepts an invitation, once.
    async fn join_trusted_session(
        &self,
        user: UserId<'_>,
        join: Join,
        now: Timestamp,
    ) -> StoreResult<Result<TrustedSessionRecord, SessionRefusal>>;
    /// The calling member leaves; the others will need a new key.
    async fn leave_trusted_session(
        &self,
        user: UserId<'_>,
        session_id: &str,
        device: DeviceId<'_>,
        now: Timestamp,
    ) -> StoreResult<Result<(), SessionRefusal>>;
    /// The creator closes its session.
    async fn close_trusted_session(
        &self,
        user: UserId<'_>,
        session_id: &str,
        device: DeviceId<'_>,
        now: Timestamp,
    ) -> StoreResult<Result<(), SessionRefusal>>;
    /// A session the device is or was a member of.
    async fn trusted_session(
        &self,
        session_id: &str,
        device: DeviceId<'_>,
    ) -> StoreResult<Option<TrustedSessionRecord>>;
    /// The open sessions the device is a member of.
    async fn trusted_sessions(&self, device: DeviceId<'_>, now: Timestamp) -> StoreResult<Vec<TrustedSessionRecord>>;
    /// Relays a member's encrypted message; its position in the user's log.
    async fn relay_message(
        &self,
        user: UserId<'_>,
        relay: Relay,
        now: Timestamp,
    ) -> StoreResult<Result<i64, SessionRefusal>>;
    /// What the device's channel delivers after `after` (at most `limit` log entries).
    async fn channel_batch(
        &self,
        user: UserId<'_>,
        device: DeviceId<'_>,
        after: i64,
        limit: i64,
        now: Timestamp,
    ) -> StoreResult<ChannelBatch>;
    /// A device opened its channel (it is online).
    async fn open_channel(
        &self,
        user: UserId<'_>,
        device: DeviceId<'_>,
        channel_id: &str,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// A channel is still held.
    async fn touch_channel(&self, channel_id: &str, now: Timestamp) -> StoreResult<()>;
    /// A channel was closed.
    async fn close_channel(&self, channel_id: &str) -> StoreResult<()>;

    // ---- keys at rest ----

    /// Unlocks the store with the server secret key: checks it is the key the
    /// database's keys are sealed under ([`StoreError::WrongSecretKey`] if not),
    /// seals any key still in plaintext in the same transaction (recording
    /// `keys.encrypted`), and keeps the key for every operation that reads or
    /// writes a private key. A fresh database takes the first key it is given.
    async fn secure_keys(&self, key: latchkey_domain::at_rest::SecretKey, now: Timestamp) -> StoreResult<KeysSecured>;
    /// The ID of the secret key the database's keys are sealed under; `None` before any.
    async fn sealed_under(&self) -> StoreResult<Option<String>>;
    /// Seals every stored key again under `new`, in one transaction, records
    /// `secret_key.rotated` by `actor`, and keeps `new`. How many keys moved.
    async fn rotate_secret_key(
        &self,
        new: latchkey_domain::at_rest::SecretKey,
        actor: String,
        now: Timestamp,
    ) -> StoreResult<u64>;
    /// The secret key this store was unlocked with ([`StoreError::NoSecretKey`] before).
    fn secret_key(&self) -> StoreResult<std::sync::Arc<latchkey_domain::at_rest::SecretKey>>;

    // ---- signing keys ----

    /// All signing keys, opened, newest first.
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Seals a key and makes it the active one; older keys stay published. Records `key.rotated`.
    async fn add_signing_key(&self, key: SigningKeyRecord, actor: Option<String>, now: Timestamp) -> StoreResult<()>;

    // ---- activity ----

    /// The user's device sign-ins (token families started for a device) since `since`, per device and UTC day.
    async fn device_sign_ins(&self, user: UserId<'_>, since: Timestamp) -> StoreResult<Vec<DaySignIns>>;
    /// Device logins since `since` per outcome and hour, counting a login requested
    /// before `expired_before` that nobody decided as expired; with the active totals.
    async fn login_overview(&self, since: Timestamp, expired_before: Timestamp) -> StoreResult<LoginOverview>;

    // ---- audit ----

    /// Appends one event on its own (for events with no other change, like a failed sign-in).
    async fn append_audit(&self, event: AuditEvent, now: Timestamp) -> StoreResult<()>;
    /// Entries with `seq > after`, oldest first, at most `limit`.
    async fn audit_entries(&self, after: i64, limit: i64) -> StoreResult<Vec<AuditEntry>>;
    /// Entries matching `filter`, newest first.
    async fn audit_page(&self, filter: AuditFilter) -> StoreResult<Vec<AuditEntry>>;
    /// The users, devices and apps among `ids`, by name, in one lookup (IDs naming nothing are left out).
    async fn audit_names(&self, ids: Vec<String>) -> StoreResult<Vec<NamedId>>;
    /// The recorded head of the old hash chain (frozen since the tree replaced it).
    async fn audit_head(&self) -> StoreResult<ChainHead>;
    /// Seals up to `max` committed entries into the tree and signs a checkpoint;
    /// `None` when nothing waited or another replica is sealing.
    async fn seal_audit(&self, now: Timestamp, max: i64) -> StoreResult<Option<Sealed>>;
    /// The tree as last sealed, with its signed checkpoint.
    async fn audit_tree(&self) -> StoreResult<AuditTreeState>;
    /// Sealed entries with `leaf > after`, in leaf order, each with the leaf hash
    /// stored for it (what `admin audit verify` walks).
    async fn audit_sealed(
        &self,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<(AuditEntry, Option<latchkey_domain::merkle::Hash>)>>;
    /// Inclusion proofs for `seqs` in the tree of `size` leaves (latest when `None`); unsealed entries are left out.
    async fn audit_inclusions(
        &self,
        seqs: Vec<i64>,
        size: Option<u64>,
    ) -> StoreResult<Result<Vec<InclusionProof>, latchkey_domain::merkle::ProofError>>;
    /// A consistency proof from `old` leaves to `new` (latest when `None`): (new size, hashes).
    async fn audit_consistency(
        &self,
        old: u64,
        new: Option<u64>,
    ) -> StoreResult<Result<(u64, Vec<latchkey_domain::merkle::Hash>), latchkey_domain::merkle::ProofError>>;
    /// Every audit signing key, opened, oldest first.
    async fn audit_keys(&self) -> StoreResult<Vec<AuditKeyRecord>>;
    /// Adds `key` as the audit signing key. Without `replace` only if no key signs
    /// yet (start-up); with it, the current keys co-sign for a week more and the
    /// change is recorded by `actor`. Whether it was added.
    async fn add_audit_key(
        &self,
        key: AuditKeyRecord,
        replace: bool,
        actor: String,
        now: Timestamp,
    ) -> StoreResult<bool>;

    // ---- values used once, across replicas ----

    /// Whether other server processes use this store at the same time (PostgreSQL
    /// replicas), so what one process remembers in memory is not the whole truth.
    fn shared_by_processes(&self) -> bool;
    /// Records the one-time value `key` (say, a DPoP proof's hash) until `until`,
    /// for every process that shares this store; false if it is already recorded
    /// and not expired at `now`: a replay.
    async fn first_use(&self, key: [u8; 32], until: Timestamp, now: Timestamp) -> StoreResult<bool>;

    // ---- housekeeping ----

    /// Deletes grants, sessions and refresh tokens that ended before `now` (with grace).
    async fn sweep(&self, now: Timestamp) -> StoreResult<SweepReport>;
    /// The backend's own load (writer queue, commits, pool), for metrics.
    fn stats(&self) -> BackendStats;
    /// The notifier through which this store announces decided grants and pairings (across replicas where the backend can).
    fn notifier(&self) -> &DecisionNotifier;
}
