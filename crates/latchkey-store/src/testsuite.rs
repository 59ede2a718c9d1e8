//! Conformance checks every [`Store`] backend must pass, so backends agree on
//! business outcomes, audit entries and concurrency guarantees, not just types.
//!
//! Each check takes a fresh, empty store and panics naming the broken promise.
//! A backend's test file runs them all with [`for_each_check!`](crate::for_each_check);
//! the `*_across_replicas` checks take two stores on one database and are run by
//! backends that can be shared between processes.
// Test code: a broken promise must fail the test, and panicking is how tests fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::*;
use latchkey_domain::audit::{AuditCheckpoint, AuditKind, TreeVerifier};
use latchkey_domain::device::{DeviceStatus, EnrollError, DEFAULT_DEVICE_CAP};
use latchkey_domain::device_grant::{DecideError, Decision, GrantState, GrantStatus};
use latchkey_domain::pairing::{PairingError, PairingState, PairingStatus};
use std::sync::Arc;
use std::time::Duration;

mod accounts;
mod activity;
mod audit;
mod decisions;
mod devices;
mod enrollment;
mod grants;
mod keys;
mod pairings;
mod passkeys;
mod replicas;
mod sign_ins;
mod stopped;
mod sweep;
mod sync;
mod tokens;
mod trusted;

pub use accounts::*;
pub use activity::*;
pub use audit::*;
pub use decisions::*;
pub use devices::*;
pub use enrollment::*;
pub use grants::*;
pub use keys::*;
pub use pairings::*;
pub use passkeys::*;
pub use replicas::*;
pub use sign_ins::*;
pub use stopped::*;
pub use sweep::*;
pub use sync::*;
pub use tokens::*;
pub use trusted::*;

/// Calls `$m!(check, ...)` with the name of every single-store check, so a
/// backend's test file gets one test per check and never misses a new one.
#[macro_export]
macro_rules! for_each_check {
    ($m:ident) => {
        $m!(
            users_create_and_conflict,
            sessions_lifecycle,
            apps_create_list_conflict,
            grant_redeemed_exactly_once,
            grant_denied,
            grant_expiry,
            grant_slow_down_and_wait,
            grant_client_mismatch,
            refresh_rotation_and_reuse,
            refresh_concurrent_rotation,
            revoke_refresh_family,
            signing_keys_rotation,
            secret_key_checked_and_rotated,
            audit_tree_under_concurrency,
            sweep_removes_expired,
            values_are_used_once,
            device_registered_on_approval,
            device_slugs_beyond_the_probes,
            device_refusals_change_nothing,
            device_rename_and_relocate,
            device_revoke_takes_its_tokens,
            device_same_key_is_same_device,
            device_registration_under_concurrency,
            redeem_requires_device_key,
            rotate_requires_device_key,
            enrollment_keys_lifecycle,
            enrollment_refusals,
            enrollment_single_use_under_concurrency,
            app_update_persisted_and_audited,
            pairing_approved_then_collected_once,
            web_pairing_opens_one_browser_session,
            pairing_denied_and_cancelled,
            pairing_expiry,
            pairing_lookups_and_refusals,
            audit_page_filters,
            audit_by_device_time_and_names,
            sweep_removes_old_pairings,
            redeem_decisions,
            registration_decisions,
            concurrent_explicit_slug_collisions,
            disabled_account_gets_nothing,
            disable_racing_redeems_lets_nothing_out_after_it,
            device_revocation_racing_redeems_leaves_nothing_alive,
            revoke_everything_password_change_and_delete,
            refresh_with_an_unneeded_proof_changes_nothing,
            repeated_failures_lock_and_the_lock_can_be_lifted,
            sign_ins_listed_and_ended,
            passkeys_and_the_last_way_in,
            passkey_sign_in_is_recorded_with_its_method,
            ceremonies_answer_once,
            unbound_grant_is_bound_to_the_presented_key,
            events_are_stored_once_whatever_the_order,
            large_batches_store_each_event_once,
            event_outcomes_and_the_stream,
            event_kinds_retention_and_deletion,
            trust_is_signed_mutual_and_removable,
            trusted_session_lifecycle,
            key_rotation_keeps_trust_only_with_a_chain,
            expired_session_is_closed_and_recorded,
            channel_cursor_skips_only_what_stays_hidden,
            activity_counts,
        );
    };
}

/// A fixed epoch for the checks; time is an input, so nothing here sleeps.
const T0: i64 = 1_700_000_000_000;
const DAY_MS: i64 = 24 * 3600 * 1000;
/// How long a wake-up may take before the check calls it lost.
const WAKE_TIMEOUT: Duration = Duration::from_secs(5);

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(T0 + ms)
}

fn h(s: &str) -> SecretHash {
    SecretHash::of(s)
}

fn new_user(name: &str, is_admin: bool) -> NewUser {
    NewUser {
        id: format!("u-{name}"),
        username: name.to_string(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$salt${name}"),
        is_admin,
    }
}

fn public_app(client_id: &str, now: Timestamp) -> AppRecord {
    AppRecord {
        client_id: client_id.to_string(),
        display_name: format!("{client_id} app"),
        kind: ClientKind::Public,
        secret_hash: None,
        grant_types: vec![GrantType::DeviceCode, GrantType::RefreshToken],
        redirect_uris: vec![],
        app_url: None,
        qr_sign_in: false,
        require_dpop: false,
        created_at: now,
        post_logout_redirect_uris: Vec::new(),
        id_token_alg: Default::default(),
    }
}

fn new_grant(tag: &str, now: Timestamp) -> NewDeviceGrant {
    NewDeviceGrant {
        id: format!("grant-{tag}"),
        client_id: "cli".to_string(),
        scope: "openid profile".to_string(),
        device_code_hash: h(&format!("device-{tag}")),
        user_code_hash: h(&format!("user-{tag}")),
        state: GrantState::new(now, 600, 5),
        requester: Requester {
            ip: "192.0.2.1".to_string(),
            user_agent: "latchkey-test/1".to_string(),
            device_name: Some("laptop".to_string()),
        },
        device: DeviceRequest {
            platform: "linux-x86_64".to_string(),
            client_version: "1.0.0".to_string(),
            location: Some("Home office".to_string()),
            ..DeviceRequest::default()
        },
    }
}

/// A QR sign-in to app `cli`: the desktop's secret is `desktop-{tag}`, the phone's code `phone-{tag}`.
fn new_pairing(tag: &str, now: Timestamp) -> NewPairing {
    NewPairing {
        id: format!("pairing-{tag}"),
        client_id: "cli".to_string(),
        desktop_secret_hash: h(&format!("desktop-{tag}")),
        phone_code_hash: h(&format!("phone-{tag}")),
        state: PairingState::new(now),
        requester: Requester {
            ip: "203.0.113.9".to_string(),
            user_agent: "Mozilla/5.0 (desktop)".to_string(),
            device_name: None,
        },
        continues: None,
    }
}

/// The record a freshly created [`new_pairing`] reads back as.
fn pending_pairing(p: &NewPairing, now: Timestamp) -> PairingRecord {
    PairingRecord {
        id: p.id.clone(),
        client_id: p.client_id.clone(),
        state: p.state,
        created_at: now,
        requester: p.requester.clone(),
        continues: p.continues.clone(),
        user_id: None,
        decided_at: None,
    }
}

/// Session `session-{tag}` of `user` (ID `sid-{tag}`), opened from a browser, with its sign-in event.
fn new_session(tag: &str, user: &UserRecord, expires_at: Timestamp) -> NewSession {
    NewSession {
        token_hash: h(&format!("session-{tag}")),
        id: format!("sid-{tag}"),
        ip: "192.0.2.4".to_string(),
        user_agent: "Mozilla/5.0 (phone)".to_string(),
        user_id: user.id.clone(),
        expires_at,
        amr: "pwd".to_string(),
        audit: AuditEvent::new(AuditKind::SignInSucceeded, Some(&user.id), Some(&user.id)),
    }
}

fn mint(tag: &str) -> MintRefresh {
    MintRefresh { new_family_id: format!("family-{tag}"), refresh: Some(replacement(tag)) }
}

/// The refresh token [`mint`] and [`replacement`] store for `tag`.
fn refresh_hash(tag: &str) -> SecretHash {
    h(&format!("refresh-{tag}"))
}

fn replacement(tag: &str) -> NewRefreshToken {
    NewRefreshToken { token_hash: refresh_hash(tag), expires_at: at(30 * DAY_MS) }
}

fn decision(tag: &str, user: &UserRecord, decision: Decision) -> GrantDecision {
    GrantDecision {
        user_code_hash: h(&format!("user-{tag}")),
        user_id: user.id.clone(),
        decision,
        ip: "198.51.100.7".to_string(),
        new_device_id: format!("dev-{tag}"),
        device_cap: DEFAULT_DEVICE_CAP,
    }
}

fn redeem(tag: &str, client_id: &str, mode: RedeemMode, mint_tag: &str) -> Redeem {
    Redeem {
        device_code_hash: h(&format!("device-{tag}")),
        client_id: client_id.to_string(),
        mode,
        presented_jkt: None,
        mint: mint(mint_tag),
    }
}

/// A user `dev` and a public app `cli`, which most checks need.
async fn setup(store: &dyn Store) -> UserRecord {
    let user = store.create_user(new_user("dev", false), None, at(0)).await.unwrap();
    store.create_app(public_app("cli", at(0)), Some(user.id.clone()), at(0)).await.unwrap();
    user
}

/// Creates, approves and redeems grant `tag`; returns the subject and the refresh token's hash.
async fn tokens_for(store: &dyn Store, user: &UserRecord, tag: &str) -> (TokenSubject, SecretHash) {
    store.create_device_grant(new_grant(tag, at(0)), at(0)).await.unwrap();
    let d = store.decide_device_grant(decision(tag, user, Decision::Approve), at(1000)).await.unwrap();
    assert!(matches!(d, DecideResult::Decided(_)), "approve {tag}: {d:?}");
    match store.redeem_device_grant(redeem(tag, "cli", RedeemMode::Poll, tag), at(2000)).await.unwrap() {
        Redeemed::Tokens(s) => (s, refresh_hash(tag)),
        other => panic!("redeeming approved grant {tag} gave {other:?}, not tokens"),
    }
}

async fn grant(store: &dyn Store, tag: &str) -> DeviceGrantRecord {
    store
        .device_grant_by_user_code(&h(&format!("user-{tag}")))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("grant {tag} is missing"))
}

async fn all_entries(store: &dyn Store) -> Vec<latchkey_domain::audit::AuditEntry> {
    store.audit_entries(0, i64::MAX).await.unwrap()
}

async fn kinds(store: &dyn Store) -> Vec<String> {
    all_entries(store).await.into_iter().map(|e| e.kind).collect()
}

async fn count_kind(store: &dyn Store, kind: AuditKind) -> usize {
    kinds(store).await.iter().filter(|k| *k == kind.as_str()).count()
}

/// The newest audit entry records exactly `want` (kind, actor, subject, detail) at `now`.
async fn assert_last_event(store: &dyn Store, want: &AuditEvent, now: Timestamp) {
    let entries = all_entries(store).await;
    let last = entries.last().unwrap_or_else(|| panic!("no audit entry; wanted {want:?}"));
    assert_eq!(
        (last.kind.as_str(), last.actor.as_deref(), last.subject.as_deref(), last.detail.as_str(), last.at),
        (want.kind.as_str(), want.actor.as_deref(), want.subject.as_deref(), want.detail.as_str(), now),
        "newest audit entry"
    );
}

/// The newest audit entries record exactly `want`, oldest first, all at `now`.
async fn assert_last_events(store: &dyn Store, want: &[AuditEvent], now: Timestamp) {
    let entries = all_entries(store).await;
    assert!(entries.len() >= want.len(), "{} audit entries; wanted at least {want:?}", entries.len());
    let got: Vec<_> = entries[entries.len() - want.len()..]
        .iter()
        .map(|e| (e.kind.clone(), e.actor.clone(), e.subject.clone(), e.detail.clone(), e.at))
        .collect();
    let want: Vec<_> = want
        .iter()
        .map(|e| (e.kind.as_str().to_string(), e.actor.clone(), e.subject.clone(), e.detail.clone(), now))
        .collect();
    assert_eq!(got, want, "newest audit entries");
}

/// A fixed audit key for conformance checks (the server makes a random one).
pub fn test_audit_key() -> AuditKeyRecord {
    let seed = [7u8; 32];
    let signer = latchkey_domain::signed_note::NoteSigner::new("test.example/audit", &seed).unwrap();
    AuditKeyRecord {
        key_id: signer.key_id(),
        name: "test.example/audit".into(),
        seed,
        created_at: at(0),
        retired_at: None,
    }
}

/// Seals everything written so far, then checks the whole log: every entry is
/// sealed once, leaves are contiguous, each leaf hash matches its entry, and the
/// tree's root is the one the latest checkpoint signs. Returns (size, root).
pub async fn verify_audit_log(store: &dyn Store) -> (u64, latchkey_domain::merkle::Hash) {
    store.add_audit_key(test_audit_key(), false, "system".into(), at(0)).await.unwrap();
    while store.seal_audit(at(0), 1000).await.unwrap().is_some() {}
    let tree = store.audit_tree().await.unwrap();
    let written = all_entries(store).await.len() as u64;
    assert_eq!(tree.size, written, "every entry is sealed exactly once");
    let keys: Vec<_> = store
        .audit_keys()
        .await
        .unwrap()
        .iter()
        .map(|k| latchkey_domain::signed_note::NoteSigner::new(&k.name, &k.seed).unwrap().verifier())
        .collect();
    let mut walk = TreeVerifier::new(&[tree.size]);
    let mut after = -1;
    loop {
        let page = store.audit_sealed(after, 7).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.0.leaf.unwrap();
        for (e, sealed) in &page {
            walk.push(e, *sealed);
        }
    }
    if let Some(note) = &tree.checkpoint {
        walk.check(&AuditCheckpoint::open(note, &keys).unwrap_or_else(|e| panic!("checkpoint: {e}")));
    }
    let (size, root, breaks) = walk.finish();
    assert_eq!(breaks, vec![], "the audit log does not verify");
    assert_eq!((size, root), (tree.size, tree.root));
    (size, root)
}

/// Runs `n` copies of `op` at once and collects their results in task order.
async fn concurrently<T, F, Fut>(n: usize, op: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let barrier = barrier.clone();
            let fut = op(i);
            tokio::spawn(async move {
                barrier.wait().await;
                fut.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}
