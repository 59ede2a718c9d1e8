//! Conformance checks: a disabled account gets nothing by any path, a
//! disable racing with minting lets nothing out after it commits, and
//! revoke-everything, password changes and deletion end what they say.

use super::enrollment::{enroll, key};
use super::*;
use latchkey_domain::account::{AccountRefusal, LockPolicy};

/// A user with one of everything: tokens from a device login, an approved
/// grant not yet collected, an approved QR sign-in not yet collected, an
/// enrollment key and a session.
async fn holding_everything(s: &dyn Store) -> (UserRecord, TokenSubject) {
    let user = setup(s).await;
    let (subject, _) = tokens_for(s, &user, "held").await;
    s.create_device_grant(new_grant("waiting", at(0)), at(0)).await.unwrap();
    let d = s.decide_device_grant(decision("waiting", &user, Decision::Approve), at(1000)).await.unwrap();
    assert!(matches!(d, DecideResult::Decided(_)), "{d:?}");
    s.create_pairing(new_pairing("qr", at(0)), at(0)).await.unwrap();
    let p = s.decide_pairing(&h("phone-qr"), UserId(&user.id), true, at(1000)).await.unwrap();
    assert!(matches!(p, PairingResult::Done(_)), "{p:?}");
    s.create_enrollment_key(key("k1", &user, true, at(DAY_MS), "dev"), at(0)).await.unwrap();
    s.create_session(new_session("1", &user, at(DAY_MS)), at(0)).await.unwrap();
    (user, subject)
}

/// Every path refuses a disabled account, changing nothing; enabling restores it.
pub async fn disabled_account_gets_nothing(store: Arc<dyn Store>) {
    let s = &*store;
    let (user, subject) = holding_everything(s).await;
    let stopped = s.set_user_disabled(UserId(&user.id), true, Actor("admin-cli"), at(2000)).await.unwrap();
    assert_eq!(stopped.map(|u| u.status.disabled_at), Some(Some(at(2000))));
    let t = at(3000);
    let refused = AccountRefusal::Disabled;

    assert_eq!(s.session(&h("session-1"), t).await.unwrap(), None, "sessions open nothing");
    assert!(!s.family_active(FamilyId(&subject.family_id), t).await.unwrap(), "access tokens die");
    let rotated = s.rotate_refresh_token(
        RotateRefresh {
            token_hash: refresh_hash("held"),
            client_id: "cli".into(),
            replacement: replacement("held-2"),
            presented_jkt: None,
        },
        t,
    );
    assert_eq!(rotated.await.unwrap(), Rotated::AccountStopped(refused));
    for mode in [RedeemMode::Poll, RedeemMode::Wait] {
        let r = s.redeem_device_grant(redeem("waiting", "cli", mode, "late"), t).await.unwrap();
        assert_eq!(r, Redeemed::AccountStopped(refused), "{mode:?}");
    }
    s.create_device_grant(new_grant("new", at(0)), at(0)).await.unwrap();
    let approve = s.decide_device_grant(decision("new", &user, Decision::Approve), t).await.unwrap();
    assert_eq!(approve, DecideResult::AccountStopped(refused));
    s.create_pairing(new_pairing("qr2", at(0)), at(0)).await.unwrap();
    let qr = s.decide_pairing(&h("phone-qr2"), UserId(&user.id), true, t).await.unwrap();
    assert_eq!(qr, PairingResult::AccountStopped(refused));
    let collected = s.collect_pairing(&h("desktop-qr"), mint("qr"), t).await.unwrap();
    assert_eq!(collected, Collected::AccountStopped(refused));
    assert_eq!(s.enroll_device(enroll("k1", "e1", 50), t).await.unwrap(), Enrolled::AccountStopped(refused));

    // Nothing was consumed, collected or created while it was stopped.
    assert_eq!(grant(s, "waiting").await.state.status, GrantStatus::Approved);
    assert_eq!(grant(s, "new").await.state.status, GrantStatus::Pending);
    let qr = s.pairing_by_desktop_secret(&h("desktop-qr")).await.unwrap().unwrap();
    assert_eq!(qr.state.status, PairingStatus::Approved);
    assert_eq!(s.device(DeviceId("dev-e1")).await.unwrap(), None);
    assert_eq!(s.refresh_token(&refresh_hash("held-2")).await.unwrap(), None);

    let enabled = s.set_user_disabled(UserId(&user.id), false, Actor("admin-cli"), at(4000)).await.unwrap();
    assert_eq!(enabled.map(|u| u.status.disabled_at), Some(None));
    assert!(s.family_active(FamilyId(&subject.family_id), at(5000)).await.unwrap());
    assert!(s.session(&h("session-1"), at(5000)).await.unwrap().is_some());
    let r = s.redeem_device_grant(redeem("waiting", "cli", RedeemMode::Poll, "late"), at(5000)).await.unwrap();
    assert!(matches!(r, Redeemed::Tokens(_)), "{r:?}");
    assert_eq!(count_kind(s, AuditKind::UserDisabled).await, 1);
    assert_eq!(count_kind(s, AuditKind::UserEnabled).await, 1);
    verify_audit_log(s).await;
}

/// Sixteen approved grants redeemed at once while the account is disabled:
/// no grant is consumed in the audit log after the disable.
pub async fn disable_racing_redeems_lets_nothing_out_after_it(store: Arc<dyn Store>) {
    let user = setup(&*store).await;
    for i in 0..16 {
        store.create_device_grant(new_grant(&format!("r{i}"), at(0)), at(0)).await.unwrap();
        let d = store.decide_device_grant(decision(&format!("r{i}"), &user, Decision::Approve), at(1000)).await;
        assert!(matches!(d.unwrap(), DecideResult::Decided(_)));
    }
    let results = concurrently(17, |i| {
        let (store, user) = (store.clone(), user.clone());
        async move {
            if i == 8 {
                store.set_user_disabled(UserId(&user.id), true, Actor("admin-cli"), at(2000)).await.unwrap();
                None
            } else {
                let tag = format!("r{}", if i > 8 { i - 1 } else { i });
                Some(store.redeem_device_grant(redeem(&tag, "cli", RedeemMode::Poll, &tag), at(2000)).await.unwrap())
            }
        }
    })
    .await;
    let entries = all_entries(&*store).await;
    let disabled_at = entries.iter().find(|e| e.kind == AuditKind::UserDisabled.as_str()).map(|e| e.seq).unwrap();
    let consumed: Vec<i64> =
        entries.iter().filter(|e| e.kind == AuditKind::GrantConsumed.as_str()).map(|e| e.seq).collect();
    assert!(consumed.iter().all(|&seq| seq < disabled_at), "consumed after the disable: {consumed:?} vs {disabled_at}");
    let tokens = results.iter().flatten().filter(|r| matches!(r, Redeemed::Tokens(_))).count();
    let refused = results.iter().flatten().filter(|r| matches!(r, Redeemed::AccountStopped(_))).count();
    assert_eq!((tokens, refused, tokens + refused), (consumed.len(), 16 - consumed.len(), 16), "{results:?}");
    // Whatever got out before the disable is dead now.
    for r in results.iter().flatten() {
        if let Redeemed::Tokens(t) = r {
            assert!(!store.family_active(FamilyId(&t.family_id), at(3000)).await.unwrap());
        }
    }
    verify_audit_log(&*store).await;
}

/// Devices revoked while their grants are being redeemed: whatever tokens got
/// out are dead once the revocation has committed (the redemption holds the
/// device's row, so the two take turns).
pub async fn device_revocation_racing_redeems_leaves_nothing_alive(store: Arc<dyn Store>) {
    let user = setup(&*store).await;
    for i in 0..16 {
        store.create_device_grant(new_grant(&format!("v{i}"), at(0)), at(0)).await.unwrap();
        let d = store.decide_device_grant(decision(&format!("v{i}"), &user, Decision::Approve), at(1000)).await;
        assert!(matches!(d.unwrap(), DecideResult::Decided(_)));
    }
    let results = concurrently(32, |i| {
        let (store, user) = (store.clone(), user.clone());
        async move {
            let tag = format!("v{}", i / 2);
            if i % 2 == 0 {
                let id = format!("dev-{tag}");
                store.revoke_device(DeviceId(&id), Some(UserId(&user.id)), Actor(&user.id), at(2000)).await.unwrap();
                None
            } else {
                Some(store.redeem_device_grant(redeem(&tag, "cli", RedeemMode::Poll, &tag), at(2000)).await.unwrap())
            }
        }
    })
    .await;
    for r in results.iter().flatten() {
        if let Redeemed::Tokens(t) = r {
            assert!(
                !store.family_active(FamilyId(&t.family_id), at(3000)).await.unwrap(),
                "alive after its device's revocation"
            );
        }
    }
    verify_audit_log(&*store).await;
}

/// Revoke-everything ends sessions, families, uncollected approvals and keys;
/// a password change ends the other sessions; deletion takes everything.
pub async fn revoke_everything_password_change_and_delete(store: Arc<dyn Store>) {
    let s = &*store;
    let (user, subject) = holding_everything(s).await;
    let ended = s.revoke_everything(UserId(&user.id), Actor("admin-cli"), at(2000)).await.unwrap();
    assert_eq!(ended, Some(RevokedAll { sessions: 1, families: 1, grants: 1, pairings: 1, enrollment_keys: 1 }));
    assert_eq!(s.session(&h("session-1"), at(3000)).await.unwrap(), None);
    assert!(!s.family_active(FamilyId(&subject.family_id), at(3000)).await.unwrap());
    let r = s.redeem_device_grant(redeem("waiting", "cli", RedeemMode::Poll, "late"), at(3000)).await.unwrap();
    assert_eq!(r, Redeemed::Denied);
    let c = s.collect_pairing(&h("desktop-qr"), mint("qr"), at(3000)).await.unwrap();
    assert!(matches!(c, Collected::Refused(_)), "{c:?}");
    assert!(matches!(s.enroll_device(enroll("k1", "e1", 50), at(3000)).await.unwrap(), Enrolled::Refused(_)));
    // The account itself still works.
    assert!(s.session(&h("session-2"), at(3000)).await.unwrap().is_none());

    for n in 2..=3 {
        s.create_session(new_session(&n.to_string(), &user, at(DAY_MS)), at(3000)).await.unwrap();
    }
    let keep = h("session-2");
    assert!(s
        .change_password(UserId(&user.id), "$argon2id$new", Some(&keep), Actor(&user.id), at(4000))
        .await
        .unwrap());
    assert!(s.session(&keep, at(5000)).await.unwrap().is_some(), "the session that changed it stays");
    assert_eq!(s.session(&h("session-3"), at(5000)).await.unwrap(), None, "the others end");
    assert_eq!(s.user_by_name("dev").await.unwrap().unwrap().password_hash, "$argon2id$new");

    assert!(s.delete_user(UserId(&user.id), Actor("admin-cli"), at(6000)).await.unwrap());
    assert!(!s.delete_user(UserId(&user.id), Actor("admin-cli"), at(6000)).await.unwrap());
    assert_eq!(s.user_by_name("dev").await.unwrap(), None);
    assert_eq!(s.session(&keep, at(7000)).await.unwrap(), None);
    assert!(s.devices(UserId(&user.id)).await.unwrap().is_empty());
    assert_eq!(s.users().await.unwrap(), Vec::<UserRecord>::new());
    assert_eq!(count_kind(s, AuditKind::UserDeleted).await, 1);
    assert_eq!(count_kind(s, AuditKind::PasswordChanged).await, 1);
    assert_eq!(count_kind(s, AuditKind::UserRevokedAll).await, 1);
    verify_audit_log(s).await;
}

/// Wrong passwords lock an account after the policy's count; a correct password
/// from a failing network stays refused, from another network lifts the lock;
/// enabling lifts it too; the account row and the audit chain say so.
pub async fn repeated_failures_lock_and_the_lock_can_be_lifted(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    let u = UserId(&user.id);
    let policy = LockPolicy { failures: 3, window_secs: 600, lock_for_secs: 900 };
    assert_eq!(s.record_sign_in_failure(u, "10.0.0.1", failed(), policy, at(1000)).await.unwrap(), None);
    assert_eq!(s.record_sign_in_failure(u, "10.0.0.1", failed(), policy, at(2000)).await.unwrap(), None);
    let until = at(3000 + 900_000);
    assert_eq!(s.record_sign_in_failure(u, "10.0.0.2", failed(), policy, at(3000)).await.unwrap(), Some(until));
    assert_eq!(s.user_by_name(&user.username).await.unwrap().map(|u| u.status.locked_until), Some(Some(until)));
    assert_eq!(kinds(s).await.iter().filter(|k| *k == "user.locked").count(), 1);
    // Failures while locked neither lengthen the lock nor lock it again.
    assert_eq!(s.record_sign_in_failure(u, "10.0.0.1", failed(), policy, at(4000)).await.unwrap(), None);
    assert_eq!(s.user_by_name(&user.username).await.unwrap().map(|u| u.status.locked_until), Some(Some(until)));

    let locked = Err(AccountRefusal::Locked { until });
    assert_eq!(s.record_sign_in_success(u, "10.0.0.1", policy, at(5000)).await.unwrap(), locked);
    assert_eq!(s.record_sign_in_success(u, "10.0.0.2", policy, at(5000)).await.unwrap(), locked);
    assert_eq!(s.record_sign_in_success(u, "192.0.2.9", policy, at(5000)).await.unwrap(), Ok(true));
    assert_eq!(s.user_by_name(&user.username).await.unwrap().map(|u| u.status.locked_until), Some(None));
    // Lifted, the failing network may sign in again, and the run starts over.
    assert_eq!(s.record_sign_in_success(u, "10.0.0.1", policy, at(6000)).await.unwrap(), Ok(false));
    for ms in [7000, 8000] {
        assert_eq!(s.record_sign_in_failure(u, "10.0.0.1", failed(), policy, at(ms)).await.unwrap(), None);
    }
    assert!(s.record_sign_in_failure(u, "10.0.0.1", failed(), policy, at(9000)).await.unwrap().is_some());
    // The admin's enable lifts a lock.
    let enabled = s.set_user_disabled(u, false, Actor("admin-cli"), at(10_000)).await.unwrap();
    assert_eq!(enabled.map(|u| u.status), Some(Default::default()));
    assert_eq!(s.record_sign_in_success(u, "10.0.0.1", policy, at(11_000)).await.unwrap(), Ok(false));
    // A policy of 0 never locks; nobody is locked for failing on an account that does not exist.
    for ms in 0..5 {
        assert_eq!(
            s.record_sign_in_failure(u, "10.0.0.1", failed(), LockPolicy::NEVER, at(12_000 + ms)).await.unwrap(),
            None
        );
    }
    assert_eq!(
        s.record_sign_in_failure(UserId("u-nobody"), "10.0.0.1", failed(), policy, at(13_000)).await.unwrap(),
        None
    );
    // Every failure's own entry went in with it, locked, unlocked or never locking.
    assert_eq!(count_kind(s, AuditKind::SignInFailed).await, 13);
    verify_audit_log(s).await;
}

/// The audit entry a wrong password records.
fn failed() -> AuditEvent {
    AuditEvent::new(AuditKind::SignInFailed, Some("u-dev"), Some("u-dev"))
}
