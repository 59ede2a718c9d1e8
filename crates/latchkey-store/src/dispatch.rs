//! The one implementation of [`Store`](crate::Store), shared by every backend.
//!
//! Which operation runs in a write transaction and which on a read snapshot,
//! which flow executes it, and who is woken afterwards is decided here once.
//! A backend supplies two macros and its own modules for what is not a flow
//! (users, apps, keys, audit, sweep, listings):
//!
//! - `write!(store, flow [args] |tx| body)`: `body` is a future over `tx`, a
//!   [`Txn`](crate::txn::Txn), run in one write transaction; `[args]` are the
//!   owned values the body uses (a backend that re-runs a transaction after a
//!   deadlock clones them for each attempt).
//! - `write!(store, local [args] |c| body)`: the backend's own function `body`
//!   on its raw write connection.
//! - `read!(…)`: the same two forms, on a read-only connection or snapshot.
//!
//! `store.notifier` (a [`DecisionNotifier`](crate::DecisionNotifier)),
//! `store.vault` (a [`KeyVault`](crate::KeyVault)) and the modules `users`,
//! `devices`, `enrollment`, `audit` and `sweep` are looked up where the macro
//! is invoked.

/// Implements [`Store`](crate::Store) for a backend from its `write!` and `read!` macros.
#[macro_export]
macro_rules! impl_store {
    ($store:ty, $write:ident, $read:ident) => {
        #[$crate::__private::async_trait]
        impl $crate::Store for $store {
            async fn create_user(
                &self,
                user: $crate::NewUser,
                actor: Option<String>,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<$crate::UserRecord> {
                $write!(self, local [user, actor] |c| users::create_user(c, user, actor, now))
            }
            async fn user_by_name(&self, username: &str) -> $crate::StoreResult<Option<$crate::UserRecord>> {
                let name = username.to_string();
                $read!(self, local [name] |c| users::user_by_name(c, &name))
            }
            async fn count_users(&self) -> $crate::StoreResult<i64> {
                $read!(self, local [] |c| users::count_users(c))
            }
            async fn users(&self) -> $crate::StoreResult<Vec<$crate::UserRecord>> {
                $read!(self, flow [] |tx| $crate::txn::Txn::users(tx))
            }
            async fn set_user_disabled(
                &self,
                user: $crate::UserId<'_>,
                disabled: bool,
                actor: $crate::Actor<'_>,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Option<$crate::UserRecord>> {
                let (u, actor) = (user.0.to_string(), actor.0.to_string());
                $write!(self, flow [u, actor] |tx| $crate::flows::accounts::set_disabled(tx, &u, disabled, &actor, now))
            }
            async fn record_sign_in_failure(
                &self,
                user: $crate::UserId<'_>,
                network: &str,
                failure: $crate::__private::AuditEvent,
                policy: $crate::__private::LockPolicy,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Option<$crate::__private::Timestamp>> {
                let (u, net) = (user.0.to_string(), network.to_string());
                $write!(self, flow [u, net, failure] |tx| {
                    $crate::flows::accounts::record_sign_in_failure(tx, &u, &net, &failure, policy, now)
                })
            }
            async fn record_sign_in_success(
                &self,
                user: $crate::UserId<'_>,
                network: &str,
                policy: $crate::__private::LockPolicy,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Result<bool, $crate::__private::AccountRefusal>> {
                let (u, net) = (user.0.to_string(), network.to_string());
                $write!(self, flow [u, net] |tx| {
                    $crate::flows::accounts::record_sign_in_success(tx, &u, &net, policy, now)
                })
            }
            async fn delete_user(
                &self,
                user: $crate::UserId<'_>,
                actor: $crate::Actor<'_>,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<bool> {
                let (u, actor) = (user.0.to_string(), actor.0.to_string());
                $write!(self, flow [u, actor] |tx| $crate::flows::accounts::delete(tx, &u, &actor, now))
            }
            async fn change_password(
                &self,
                user: $crate::UserId<'_>,
                password_hash: &str,
                keep: Option<&$crate::__private::SecretHash>,
                actor: $crate::Actor<'_>,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<bool> {
                let (u, hash, keep, actor) =
                    (user.0.to_string(), password_hash.to_string(), keep.cloned(), actor.0.to_string());
                $write!(self, flow [u, hash, keep, actor] |tx| {
                    $crate::flows::accounts::change_password(tx, &u, &hash, keep.as_ref(), &actor, now)
                })
            }
            async fn revoke_everything(
                &self,
                user: $crate::UserId<'_>,
                actor: $crate::Actor<'_>,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Option<$crate::RevokedAll>> {
                let (u, actor) = (user.0.to_string(), actor.0.to_string());
                $write!(self, flow [u, actor] |tx| $crate::flows::accounts::revoke_everything(tx, &u, &actor, now))
            }
            async fn create_session(
                &self,
                session: $crate::NewSession,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<()> {
                $write!(self, local [session] |c| users::create_session(c, session, now))
            }
            async fn session(
                &self,
                token_hash: &$crate::__private::SecretHash,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Option<$crate::SessionRecord>> {
                let h = token_hash.clone();
                let session = $read!(self, local [h] |c| users::session(c, &h, now))?;
                // A stopped account's sessions stay stored but open nothing.
                Ok(session.filter(|s: &$crate::SessionRecord| s.user.status.check(now).is_ok()))
            }
            async fn delete_session(
                &self,
                token_hash: &$crate::__private::SecretHash,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<bool> {
                let h = token_hash.clone();
                $write!(self, local [h] |c| users::delete_session(c, &h, now))
            }
            async fn create_app(
                &self,
                app: $crate::AppRecord,
                actor: Option<String>,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<()> {
                $write!(self, local [app, actor] |c| users::create_app(c, app, actor, now))
            }
            async fn app(&self, client_id: $crate::AppId<'_>) -> $crate::StoreResult<Option<$crate::AppRecord>> {
                let id = client_id.0.to_string();
                $read!(self, local [id] |c| users::app(c, &id))
            }
            async fn list_apps(&self) -> $crate::StoreResult<Vec<$crate::AppRecord>> {
                $read!(self, local [] |c| users::list_apps(c))
            }
            async fn update_app(
                &self,
                client_id: $crate::AppId<'_>,
                update: $crate::AppUpdate,
                actor: $crate::Actor<'_>,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Option<$crate::AppRecord>> {
                let (id, actor) = (client_id.0.to_string(), actor.0.to_string());
                $write!(self, local [id, update, actor] |c| users::update_app(c, &id, &update, &actor, now))
            }

            async fn issue_authorization_code(
                &self,
                code: $crate::NewAuthorizationCode,
                consent: Option<$crate::ConsentRecord>,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Result<(), $crate::__private::AccountRefusal>> {
                $write!(self, flow [code, consent] |tx| $crate::flows::web_sign_in::issue_code(tx, &code, consent.as_ref(), now))
            }
            async fn redeem_authorization_code(
                &self,
                redeem: $crate::RedeemCode,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<$crate::CodeRedeemed> {
                $write!(self, flow [redeem] |tx| $crate::flows::web_sign_in::redeem(tx, &redeem, now))
            }
            async fn consent(
                &self,
                user: $crate::UserId<'_>,
                app: $crate::AppId<'_>,
            ) -> $crate::StoreResult<Option<$crate::ConsentRecord>> {
                let (u, a) = (user.0.to_string(), app.0.to_string());
                $read!(self, flow [u, a] |tx| $crate::txn::Txn::consent(tx, &u, &a))
            }
            async fn consents_of(&self, user: $crate::UserId<'_>) -> $crate::StoreResult<Vec<$crate::ConsentRecord>> {
                let u = user.0.to_string();
                $read!(self, flow [u] |tx| $crate::txn::Txn::consents_of(tx, &u))
            }
            async fn withdraw_consent(
                &self,
                user: $crate::UserId<'_>,
                app: $crate::AppId<'_>,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Option<u64>> {
                let (u, a) = (user.0.to_string(), app.0.to_string());
                $write!(self, flow [u, a] |tx| $crate::flows::web_sign_in::withdraw_consent(tx, &u, &a, now))
            }
            async fn passkeys(&self, user: $crate::UserId<'_>) -> $crate::StoreResult<Vec<$crate::PasskeyRecord>> {
                let u = user.0.to_string();
                $read!(self, flow [u] |tx| $crate::txn::Txn::passkeys_of(tx, &u))
            }
            async fn passkey_by_credential(
                &self,
                credential_id: &str,
            ) -> $crate::StoreResult<Option<$crate::PasskeyRecord>> {
                let c = credential_id.to_string();
                $read!(self, flow [c] |tx| $crate::txn::Txn::passkey_by_credential(tx, &c))
            }
            async fn start_ceremony(
                &self,
                ceremony: $crate::NewCeremony,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<()> {
                $write!(self, flow [ceremony] |tx| $crate::txn::Txn::insert_ceremony(tx, &ceremony, now))
            }
            async fn take_ceremony(
                &self,
                id_hash: &$crate::__private::SecretHash,
                kind: $crate::__private::CeremonyKind,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Option<$crate::CeremonyRecord>> {
                let h = id_hash.clone();
                $write!(self, flow [h] |tx| $crate::txn::Txn::take_ceremony(tx, &h, kind, now))
            }
            async fn add_passkey(
                &self,
                passkey: $crate::NewPasskey,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Result<(), $crate::PasskeyRefusal>> {
                $write!(self, flow [passkey] |tx| $crate::flows::passkeys::add(tx, &passkey, now))
            }
            async fn remove_passkey(
                &self,
                user: $crate::UserId<'_>,
                passkey_id: &str,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Result<(), $crate::PasskeyRefusal>> {
                let (u, p) = (user.0.to_string(), passkey_id.to_string());
                $write!(self, flow [u, p] |tx| $crate::flows::passkeys::remove(tx, &u, &p, now))
            }
            async fn remove_password(
                &self,
                user: $crate::UserId<'_>,
                confirmed_with: Option<$crate::PasskeyUse>,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Result<(), $crate::PasskeyRefusal>> {
                let u = user.0.to_string();
                $write!(self, flow [u, confirmed_with] |tx| $crate::flows::passkeys::remove_password(
                    tx,
                    &u,
                    confirmed_with.as_ref(),
                    now
                ))
            }
            async fn sign_in_with_passkey(
                &self,
                sign_in: $crate::PasskeySignIn,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Result<$crate::UserRecord, $crate::PasskeyRefusal>> {
                $write!(self, flow [sign_in] |tx| $crate::flows::passkeys::sign_in(tx, &sign_in, now))
            }
            async fn create_pairing(
                &self,
                pairing: $crate::NewPairing,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<()> {
                $write!(self, flow [pairing] |tx| $crate::flows::pairings::create(tx, &pairing, now))
            }
            async fn pairing_by_phone_code(
                &self,
                phone_code_hash: &$crate::__private::SecretHash,
            ) -> $crate::StoreResult<Option<$crate::PairingRecord>> {
                let h = phone_code_hash.clone();
                $read!(self, flow [h] |tx| $crate::txn::Txn::pairing(tx, $crate::txn::PairingCode::Phone, &h, false))
            }
            async fn pairing_by_desktop_secret(
                &self,
                desktop_secret_hash: &$crate::__private::SecretHash,
            ) -> $crate::StoreResult<Option<$crate::PairingRecord>> {
                let h = desktop_secret_hash.clone();
                $read!(self, flow [h] |tx| $crate::txn::Txn::pairing(tx, $crate::txn::PairingCode::Desktop, &h, false))
            }
            async fn decide_pairing(
                &self,
                phone_code_hash: &$crate::__private::SecretHash,
                user_id: $crate::UserId<'_>,
                approve: bool,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<$crate::PairingResult> {
                let (h, u) = (phone_code_hash.clone(), user_id.0.to_string());
                let result =
                    $write!(self, flow [h, u] |tx| $crate::flows::pairings::decide(tx, &h, &u, approve, now))?;
                if let $crate::PairingResult::Done(p) = &result {
                    // Answered after commit, so waiters wake to a durable decision.
                    self.notifier.notify(&p.id);
                }
                Ok(result)
            }
            async fn cancel_pairing(
                &self,
                desktop_secret_hash: &$crate::__private::SecretHash,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<$crate::PairingResult> {
                let h = desktop_secret_hash.clone();
                let result = $write!(self, flow [h] |tx| $crate::flows::pairings::cancel(tx, &h, now))?;
                if let $crate::PairingResult::Done(p) = &result {
                    self.notifier.notify(&p.id);
                }
                Ok(result)
            }
            async fn collect_pairing(
                &self,
                desktop_secret_hash: &$crate::__private::SecretHash,
                mint: $crate::MintRefresh,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<$crate::Collected> {
                let h = desktop_secret_hash.clone();
                $write!(self, flow [h, mint] |tx| $crate::flows::pairings::collect(tx, &h, &mint, now))
            }
            async fn collect_pairing_session(
                &self,
                desktop_secret_hash: &$crate::__private::SecretHash,
                seed: $crate::SessionSeed,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<$crate::Collected> {
                let h = desktop_secret_hash.clone();
                $write!(self, flow [h, seed] |tx| $crate::flows::pairings::collect_session(tx, &h, &seed, now))
            }

            async fn create_device_grant(
                &self,
                grant: $crate::NewDeviceGrant,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<()> {
                $write!(self, flow [grant] |tx| $crate::flows::grants::create(tx, &grant, now))
            }
            async fn device_grant_by_user_code(
                &self,
                user_code_hash: &$crate::__private::SecretHash,
            ) -> $crate::StoreResult<Option<$crate::DeviceGrantRecord>> {
                let h = user_code_hash.clone();
                $read!(self, flow [h] |tx| $crate::txn::Txn::grant(tx, $crate::txn::GrantCode::User, &h, false))
            }
            async fn decide_device_grant(
                &self,
                decision: $crate::GrantDecision,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<$crate::DecideResult> {
                let result = $write!(self, flow [decision] |tx| $crate::flows::grants::decide(tx, decision, now))?;
                if let $crate::DecideResult::Decided(g) = &result {
                    // Answered after commit, so waiters wake to a durable decision.
                    self.notifier.notify(&g.id);
                }
                Ok(result)
            }
            async fn redeem_device_grant(
                &self,
                redeem: $crate::Redeem,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<$crate::Redeemed> {
                if redeem.mode == $crate::RedeemMode::Wait {
                    // Checking a waiting grant writes nothing: keep it off the write path.
                    let r = redeem.clone();
                    let check = $read!(self, flow [r] |tx| $crate::flows::grants::wait_check(tx, &r, now))?;
                    if let Some(answer) = check {
                        return Ok(answer);
                    }
                }
                $write!(self, flow [redeem] |tx| $crate::flows::grants::redeem(tx, redeem, now))
            }

            async fn rotate_refresh_token(
                &self,
                rotate: $crate::RotateRefresh,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<$crate::Rotated> {
                $write!(self, flow [rotate] |tx| $crate::flows::tokens::rotate(tx, rotate, now))
            }
            async fn revoke_refresh_family(
                &self,
                token_hash: &$crate::__private::SecretHash,
                client_id: $crate::AppId<'_>,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<bool> {
                let (h, id) = (token_hash.clone(), client_id.0.to_string());
                $write!(self, flow [h, id] |tx| $crate::flows::tokens::revoke_by_token(tx, &h, &id, now))
            }
            async fn revoke_family(
                &self,
                family_id: $crate::FamilyId<'_>,
                client_id: $crate::AppId<'_>,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<bool> {
                let (f, id) = (family_id.0.to_string(), client_id.0.to_string());
                $write!(self, flow [f, id] |tx| $crate::flows::tokens::revoke_by_id(tx, &f, &id, now))
            }
            async fn refresh_token(
                &self,
                token_hash: &$crate::__private::SecretHash,
            ) -> $crate::StoreResult<Option<$crate::RefreshTokenRecord>> {
                let h = token_hash.clone();
                let found = $read!(self, flow [h] |tx| $crate::txn::Txn::refresh_token(tx, &h, false))?;
                Ok(found.map(|(t, _)| t))
            }
            async fn issued_to(
                &self,
                credential: $crate::PresentedCredential,
            ) -> $crate::StoreResult<Option<String>> {
                $read!(self, flow [credential] |tx| $crate::flows::tokens::issued_to(tx, &credential))
            }
            async fn sign_ins(
                &self,
                user: $crate::UserId<'_>,
                live_since: $crate::__private::Timestamp,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Vec<$crate::SignInRecord>> {
                let u = user.0.to_string();
                $read!(self, flow [u] |tx| $crate::flows::sign_ins::list(tx, &u, live_since, now))
            }
            async fn end_sign_in(
                &self,
                user: $crate::UserId<'_>,
                id: &str,
                actor: $crate::Actor<'_>,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Option<$crate::SignInKind>> {
                let (u, id, actor) = (user.0.to_string(), id.to_string(), actor.0.to_string());
                $write!(self, flow [u, id, actor] |tx| $crate::flows::sign_ins::end(tx, &u, &id, &actor, now))
            }
            async fn declare_event_kind(
                &self,
                kind: $crate::EventKindRecord,
                actor: $crate::Actor<'_>,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<$crate::DeclaredKind> {
                let actor = actor.0.to_string();
                $write!(self, flow [kind, actor] |tx| $crate::flows::events::declare_kind(tx, &kind, &actor, now))
            }
            async fn event_kind(
                &self,
                client_id: $crate::AppId<'_>,
                name: &str,
            ) -> $crate::StoreResult<Option<$crate::EventKindRecord>> {
                let (c, n) = (client_id.0.to_string(), name.to_string());
                $read!(self, flow [c, n] |tx| $crate::txn::Txn::event_kind(tx, &c, &n, false))
            }
            async fn event_kinds(&self, client_id: $crate::AppId<'_>) -> $crate::StoreResult<Vec<$crate::EventKindRecord>> {
                let c = client_id.0.to_string();
                $read!(self, flow [c] |tx| $crate::txn::Txn::event_kinds(tx, &c))
            }
            async fn ingest_events(
                &self,
                batch: $crate::IngestBatch,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Vec<$crate::Ingested>> {
                let user = batch.user_id.clone();
                let result = $write!(self, flow [batch] |tx| $crate::flows::events::ingest(tx, &batch, now))?;
                // After commit, so a woken pull reads what woke it.
                self.notifier.notify(&$crate::flows::events::stream_subject(&user));
                Ok(result)
            }
            async fn pull_events(
                &self,
                user: $crate::UserId<'_>,
                client_id: $crate::AppId<'_>,
                after: i64,
                limit: i64,
            ) -> $crate::StoreResult<$crate::Pulled> {
                let (u, c) = (user.0.to_string(), client_id.0.to_string());
                $read!(self, flow [u, c] |tx| $crate::flows::events::pull(tx, &u, &c, after, limit))
            }
            async fn family_active(
                &self,
                family_id: $crate::FamilyId<'_>,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<bool> {
                let id = family_id.0.to_string();
                $read!(self, flow [id] |tx| $crate::flows::accounts::family_active(tx, &id, now))
            }

            async fn devices(&self, owner_id: $crate::UserId<'_>) -> $crate::StoreResult<Vec<$crate::DeviceRecord>> {
                let id = owner_id.0.to_string();
                $read!(self, local [id] |c| devices::list(c, &id))
            }
            async fn device(&self, id: $crate::DeviceId<'_>) -> $crate::StoreResult<Option<$crate::DeviceRecord>> {
                let id = id.0.to_string();
                $read!(self, flow [id] |tx| $crate::txn::Txn::device(tx, &id, false))
            }
            async fn rename_device(
                &self,
                id: $crate::DeviceId<'_>,
                owner_id: $crate::UserId<'_>,
                name: &str,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Option<$crate::DeviceRecord>> {
                let (id, owner, name) = (id.0.to_string(), owner_id.0.to_string(), name.to_string());
                $write!(self, flow [id, owner, name] |tx| $crate::flows::devices::rename(tx, &id, &owner, &name, now))
            }
            async fn relocate_device(
                &self,
                id: $crate::DeviceId<'_>,
                owner_id: $crate::UserId<'_>,
                location: Option<String>,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Option<$crate::DeviceRecord>> {
                let (id, owner) = (id.0.to_string(), owner_id.0.to_string());
                $write!(self, flow [id, owner, location] |tx| {
                    $crate::flows::devices::relocate(tx, &id, &owner, location, now)
                })
            }
            async fn location_history(&self, id: $crate::DeviceId<'_>) -> $crate::StoreResult<Vec<$crate::LocationChange>> {
                let id = id.0.to_string();
                $read!(self, local [id] |c| devices::history(c, &id))
            }
            async fn revoke_device(
                &self,
                id: $crate::DeviceId<'_>,
                owner_id: Option<$crate::UserId<'_>>,
                actor: $crate::Actor<'_>,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<$crate::RevokeDevice> {
                let (id, owner, actor) = (id.0.to_string(), owner_id.map(|o| o.0.to_string()), actor.0.to_string());
                let result = $write!(self, flow [id, owner, actor] |tx| {
                    $crate::flows::devices::revoke(tx, &id, owner.as_deref(), &actor, now)
                })?;
                if let $crate::RevokeDevice::Revoked(d) = &result {
                    // Its sessions changed: wake the owner's channels (and end its own).
                    self.notifier.notify(&$crate::flows::trusted_sessions::channel_subject(&d.owner_id));
                }
                Ok(result)
            }

            async fn device_keys(
                &self,
                user: $crate::UserId<'_>,
                device: $crate::DeviceId<'_>,
            ) -> $crate::StoreResult<Option<$crate::DeviceKeysRecord>> {
                let (u, d) = (user.0.to_string(), device.0.to_string());
                $read!(self, flow [u, d] |tx| $crate::flows::trust::device_keys(tx, &u, &d))
            }
            async fn publish_session_key(
                &self,
                user: $crate::UserId<'_>,
                device: $crate::DeviceId<'_>,
                key: $crate::SessionKeyRecord,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Result<(), $crate::TrustRefusal>> {
                let (u, d) = (user.0.to_string(), device.0.to_string());
                $write!(self, flow [u, d, key] |tx| $crate::flows::trust::publish_session_key(tx, &u, &d, &key, now))
            }
            async fn add_trust(
                &self,
                trust: $crate::NewTrust,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Result<$crate::TrustRecord, $crate::TrustRefusal>> {
                $write!(self, flow [trust] |tx| $crate::flows::trust::add(tx, &trust, now))
            }
            async fn remove_trust(
                &self,
                user: $crate::UserId<'_>,
                truster: $crate::DeviceId<'_>,
                trustee: $crate::DeviceId<'_>,
                actor: $crate::Actor<'_>,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<bool> {
                let (u, a, b, actor) =
                    (user.0.to_string(), truster.0.to_string(), trustee.0.to_string(), actor.0.to_string());
                let removed = $write!(self, flow [u, a, b, actor] |tx| {
                    $crate::flows::trust::remove(tx, &u, &a, &b, &actor, now)
                })?;
                self.notifier.notify(&$crate::flows::trusted_sessions::channel_subject(user.0));
                Ok(removed)
            }
            async fn trusts(&self, user: $crate::UserId<'_>) -> $crate::StoreResult<Vec<$crate::TrustRecord>> {
                let u = user.0.to_string();
                $read!(self, flow [u] |tx| $crate::flows::trust::list(tx, &u))
            }
            async fn rotate_device_key(
                &self,
                rotate: $crate::RotateKey,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Result<$crate::TokenSubject, $crate::TrustRefusal>> {
                let user = rotate.user_id.clone();
                let result = $write!(self, flow [rotate] |tx| $crate::flows::trust::rotate_key(tx, &rotate, now))?;
                self.notifier.notify(&$crate::flows::trusted_sessions::channel_subject(&user));
                Ok(result)
            }
            async fn plan_trusted_session(
                &self,
                ask: $crate::SessionAsk,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<$crate::SessionPlanned> {
                $read!(self, flow [ask] |tx| $crate::flows::trusted_sessions::plan(tx, &ask, now))
            }
            async fn create_trusted_session(
                &self,
                user: $crate::UserId<'_>,
                creator: $crate::DeviceId<'_>,
                descriptor: $crate::__private::Descriptor,
                invitations: Vec<$crate::__private::SignedInvitation>,
                member_limit: usize,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Result<$crate::SessionMade, $crate::SessionRefusal>> {
                let (u, c) = (user.0.to_string(), creator.0.to_string());
                let result = $write!(self, flow [u, c, descriptor, invitations] |tx| {
                    $crate::flows::trusted_sessions::create(tx, &u, &c, &descriptor, &invitations, member_limit, now)
                })?;
                self.notifier.notify(&$crate::flows::trusted_sessions::channel_subject(user.0));
                Ok(result)
            }
            async fn issue_invitations(
                &self,
                user: $crate::UserId<'_>,
                issue: $crate::Issue,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Result<(), $crate::SessionRefusal>> {
                let u = user.0.to_string();
                let result = $write!(self, flow [u, issue] |tx| $crate::flows::trusted_sessions::issue(tx, &u, &issue, now))?;
                self.notifier.notify(&$crate::flows::trusted_sessions::channel_subject(user.0));
                Ok(result)
            }
            async fn join_trusted_session(
                &self,
                user: $crate::UserId<'_>,
                join: $crate::Join,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Result<$crate::TrustedSessionRecord, $crate::SessionRefusal>> {
                let u = user.0.to_string();
                let result = $write!(self, flow [u, join] |tx| $crate::flows::trusted_sessions::join(tx, &u, &join, now))?;
                self.notifier.notify(&$crate::flows::trusted_sessions::channel_subject(user.0));
                Ok(result)
            }
            async fn leave_trusted_session(
                &self,
                user: $crate::UserId<'_>,
                session_id: &str,
                device: $crate::DeviceId<'_>,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Result<(), $crate::SessionRefusal>> {
                let (u, s, d) = (user.0.to_string(), session_id.to_string(), device.0.to_string());
                let result = $write!(self, flow [u, s, d] |tx| {
                    $crate::flows::trusted_sessions::leave(tx, &u, &s, &d, now)
                })?;
                self.notifier.notify(&$crate::flows::trusted_sessions::channel_subject(user.0));
                Ok(result)
            }
            async fn close_trusted_session(
                &self,
                user: $crate::UserId<'_>,
                session_id: &str,
                device: $crate::DeviceId<'_>,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Result<(), $crate::SessionRefusal>> {
                let (u, s, d) = (user.0.to_string(), session_id.to_string(), device.0.to_string());
                let result = $write!(self, flow [u, s, d] |tx| {
                    $crate::flows::trusted_sessions::close(tx, &u, &s, &d, now)
                })?;
                self.notifier.notify(&$crate::flows::trusted_sessions::channel_subject(user.0));
                Ok(result)
            }
            async fn trusted_session(
                &self,
                session_id: &str,
                device: $crate::DeviceId<'_>,
            ) -> $crate::StoreResult<Option<$crate::TrustedSessionRecord>> {
                let (s, d) = (session_id.to_string(), device.0.to_string());
                $read!(self, flow [s, d] |tx| $crate::flows::trusted_sessions::get(tx, &s, &d))
            }
            async fn trusted_sessions(
                &self,
                device: $crate::DeviceId<'_>,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Vec<$crate::TrustedSessionRecord>> {
                let d = device.0.to_string();
                $read!(self, flow [d] |tx| $crate::flows::trusted_sessions::list(tx, &d, now))
            }
            async fn relay_message(
                &self,
                user: $crate::UserId<'_>,
                relay: $crate::Relay,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Result<i64, $crate::SessionRefusal>> {
                let u = user.0.to_string();
                let result = $write!(self, flow [u, relay] |tx| $crate::flows::trusted_sessions::relay(tx, &u, &relay, now))?;
                self.notifier.notify(&$crate::flows::trusted_sessions::channel_subject(user.0));
                Ok(result)
            }
            async fn channel_batch(
                &self,
                user: $crate::UserId<'_>,
                device: $crate::DeviceId<'_>,
                after: i64,
                limit: i64,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<$crate::ChannelBatch> {
                let (u, d) = (user.0.to_string(), device.0.to_string());
                $read!(self, flow [u, d] |tx| $crate::flows::trusted_sessions::channel_batch(tx, &u, &d, after, limit, now))
            }
            async fn open_channel(
                &self,
                user: $crate::UserId<'_>,
                device: $crate::DeviceId<'_>,
                channel_id: &str,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<()> {
                let (u, d, c) = (user.0.to_string(), device.0.to_string(), channel_id.to_string());
                $write!(self, flow [u, d, c] |tx| $crate::flows::trusted_sessions::open_channel(tx, &u, &d, &c, now))?;
                self.notifier.notify(&$crate::flows::trusted_sessions::channel_subject(user.0));
                Ok(())
            }
            async fn touch_channel(&self, channel_id: &str, now: $crate::__private::Timestamp) -> $crate::StoreResult<()> {
                let c = channel_id.to_string();
                $write!(self, flow [c] |tx| $crate::txn::Txn::touch_channel(tx, &c, now))
            }
            async fn close_channel(&self, channel_id: &str) -> $crate::StoreResult<()> {
                let c = channel_id.to_string();
                $write!(self, flow [c] |tx| $crate::txn::Txn::delete_channel(tx, &c))
            }

            async fn create_enrollment_key(
                &self,
                key: $crate::NewEnrollmentKey,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<()> {
                $write!(self, flow [key] |tx| $crate::flows::enrollment::create(tx, &key, now))
            }
            async fn enrollment_keys(
                &self,
                owner_id: Option<$crate::UserId<'_>>,
            ) -> $crate::StoreResult<Vec<$crate::EnrollmentKeyRecord>> {
                let owner = owner_id.map(|o| o.0.to_string());
                $read!(self, local [owner] |c| enrollment::list(c, owner.as_deref()))
            }
            async fn revoke_enrollment_key(
                &self,
                id: $crate::EnrollmentKeyId<'_>,
                owner_id: Option<$crate::UserId<'_>>,
                actor: $crate::Actor<'_>,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<bool> {
                let (id, owner, actor) = (id.0.to_string(), owner_id.map(|o| o.0.to_string()), actor.0.to_string());
                $write!(self, flow [id, owner, actor] |tx| {
                    $crate::flows::enrollment::revoke(tx, &id, owner.as_deref(), &actor, now)
                })
            }
            async fn enroll_device(
                &self,
                enroll: $crate::Enroll,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<$crate::Enrolled> {
                $write!(self, flow [enroll] |tx| $crate::flows::enrollment::enroll(tx, enroll, now))
            }

            async fn signing_keys(&self) -> $crate::StoreResult<Vec<$crate::SigningKeyRecord>> {
                let secret = self.vault.current()?;
                $read!(self, flow [secret] |tx| $crate::flows::keys::signing_keys(tx, &secret))
            }
            async fn add_signing_key(
                &self,
                key: $crate::SigningKeyRecord,
                actor: Option<String>,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<()> {
                let secret = self.vault.current()?;
                $write!(self, flow [secret, key, actor] |tx| {
                    $crate::flows::keys::add_signing_key(tx, &secret, &key, actor.as_deref(), now)
                })
            }
            async fn secure_keys(
                &self,
                secret: $crate::__private::SecretKey,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<$crate::KeysSecured> {
                let secret = std::sync::Arc::new(secret);
                let s = secret.clone();
                let secured = $write!(self, flow [s] |tx| $crate::flows::keys::secure(tx, &s, now))?;
                self.vault.set(secret);
                Ok(secured)
            }
            async fn sealed_under(&self) -> $crate::StoreResult<Option<String>> {
                $read!(self, flow [] |tx| $crate::txn::Txn::key_sealing(tx, false))
            }
            async fn rotate_secret_key(
                &self,
                new: $crate::__private::SecretKey,
                actor: String,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<u64> {
                let old = self.vault.current()?;
                let new = std::sync::Arc::new(new);
                let n = new.clone();
                let moved = $write!(self, flow [old, n, actor] |tx| {
                    $crate::flows::keys::rotate(tx, &old, &n, &actor, now)
                })?;
                self.vault.set(new);
                Ok(moved)
            }
            fn secret_key(&self) -> $crate::StoreResult<std::sync::Arc<$crate::__private::SecretKey>> {
                self.vault.current()
            }

            async fn device_sign_ins(
                &self,
                user: $crate::UserId<'_>,
                since: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<Vec<$crate::DaySignIns>> {
                let u = user.0.to_string();
                $read!(self, flow [u] |tx| $crate::flows::activity::device_sign_ins(tx, &u, since))
            }
            async fn login_overview(
                &self,
                since: $crate::__private::Timestamp,
                expired_before: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<$crate::LoginOverview> {
                $read!(self, flow [] |tx| $crate::flows::activity::overview(tx, since, expired_before))
            }

            async fn append_audit(
                &self,
                event: $crate::__private::AuditEvent,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<()> {
                $write!(self, flow [event] |tx| $crate::txn::Txn::append_audit(tx, &event, now))
            }
            async fn audit_entries(
                &self,
                after: i64,
                limit: i64,
            ) -> $crate::StoreResult<Vec<$crate::__private::AuditEntry>> {
                $read!(self, local [] |c| audit::entries(c, after, limit))
            }
            async fn audit_page(
                &self,
                filter: $crate::AuditFilter,
            ) -> $crate::StoreResult<Vec<$crate::__private::AuditEntry>> {
                $read!(self, local [filter] |c| audit::page(c, &filter))
            }
            async fn audit_names(&self, ids: Vec<String>) -> $crate::StoreResult<Vec<$crate::NamedId>> {
                $read!(self, local [ids] |c| audit::names(c, &ids))
            }
            async fn audit_head(&self) -> $crate::StoreResult<$crate::__private::ChainHead> {
                $read!(self, local [] |c| audit::head(c))
            }
            async fn seal_audit(
                &self,
                now: $crate::__private::Timestamp,
                max: i64,
            ) -> $crate::StoreResult<Option<$crate::Sealed>> {
                let secret = self.vault.current()?;
                $write!(self, flow [secret] |tx| $crate::flows::audit::seal(tx, &secret, now, max))
            }
            async fn audit_tree(&self) -> $crate::StoreResult<$crate::AuditTreeState> {
                $read!(self, flow [] |tx| $crate::txn::Txn::audit_tree(tx, false))
            }
            async fn audit_sealed(
                &self,
                after: i64,
                limit: i64,
            ) -> $crate::StoreResult<Vec<($crate::__private::AuditEntry, Option<$crate::__private::Hash>)>> {
                $read!(self, local [] |c| audit::sealed(c, after, limit))
            }
            async fn audit_inclusions(
                &self,
                seqs: Vec<i64>,
                size: Option<u64>,
            ) -> $crate::StoreResult<Result<Vec<$crate::InclusionProof>, $crate::__private::ProofError>> {
                $read!(self, flow [seqs] |tx| $crate::flows::audit::inclusions(tx, &seqs, size))
            }
            async fn audit_consistency(
                &self,
                old: u64,
                new: Option<u64>,
            ) -> $crate::StoreResult<Result<(u64, Vec<$crate::__private::Hash>), $crate::__private::ProofError>> {
                $read!(self, flow [] |tx| $crate::flows::audit::consistency(tx, old, new))
            }
            async fn audit_keys(&self) -> $crate::StoreResult<Vec<$crate::AuditKeyRecord>> {
                let secret = self.vault.current()?;
                $read!(self, flow [secret] |tx| $crate::flows::audit::keys(tx, &secret))
            }
            async fn add_audit_key(
                &self,
                key: $crate::AuditKeyRecord,
                replace: bool,
                actor: String,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<bool> {
                let secret = self.vault.current()?;
                $write!(self, flow [secret, key, actor] |tx| {
                    $crate::flows::audit::add_key(tx, &secret, &key, replace, &actor, now)
                })
            }

            async fn sweep(&self, now: $crate::__private::Timestamp) -> $crate::StoreResult<$crate::SweepReport> {
                // Sessions past their end are closed first, each recorded like any other close.
                let expired = $write!(self, flow [] |tx| $crate::flows::trusted_sessions::expire(tx, now))?;
                for user in expired {
                    self.notifier.notify(&$crate::flows::trusted_sessions::channel_subject(&user));
                }
                $write!(self, local [] |c| sweep::sweep(c, now))
            }
            fn shared_by_processes(&self) -> bool {
                Self::SHARED_BY_PROCESSES
            }
            async fn first_use(
                &self,
                key: [u8; 32],
                until: $crate::__private::Timestamp,
                now: $crate::__private::Timestamp,
            ) -> $crate::StoreResult<bool> {
                $write!(self, flow [] |tx| $crate::txn::Txn::first_use(tx, &key, until, now))
            }
            fn stats(&self) -> $crate::BackendStats {
                self.backend_stats()
            }
            fn notifier(&self) -> &$crate::DecisionNotifier {
                &self.notifier
            }
        }
    };
}
