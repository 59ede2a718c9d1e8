//! Conformance checks: housekeeping.

use super::*;

/// Sweeping removes expired grants (after a grace), sessions, tokens, then empty families.
pub async fn sweep_removes_expired(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    s.create_device_grant(new_grant("open", at(0)), at(0)).await.unwrap();
    s.create_session(new_session("s", &user, at(3_600_000)), at(0)).await.unwrap();
    s.create_device_grant(new_grant("tok", at(0)), at(0)).await.unwrap();
    s.decide_device_grant(decision("tok", &user, Decision::Approve), at(1000)).await.unwrap();
    let mut r = redeem("tok", "cli", RedeemMode::Poll, "tok");
    r.mint.refresh = Some(NewRefreshToken { token_hash: refresh_hash("tok"), expires_at: at(7_200_000) });
    let Redeemed::Tokens(subject) = s.redeem_device_grant(r, at(2000)).await.unwrap() else {
        panic!("approved grant did not redeem");
    };
    let token = refresh_hash("tok");

    assert_eq!(s.sweep(at(0)).await.unwrap(), SweepReport::default());
    // Grants are kept ten minutes past expiry, so late polls hear "expired".
    assert_eq!(s.sweep(at(1_200_000)).await.unwrap(), SweepReport::default());
    assert_eq!(
        s.redeem_device_grant(redeem("open", "cli", RedeemMode::Poll, "x"), at(1_200_000)).await.unwrap(),
        Redeemed::Expired
    );
    assert_eq!(
        s.sweep(at(1_200_001)).await.unwrap(),
        SweepReport { events: 0, grants: 2, sessions: 0, refresh_tokens: 0 }
    );
    assert_eq!(s.device_grant_by_user_code(&h("user-open")).await.unwrap(), None);
    assert_eq!(
        s.redeem_device_grant(redeem("open", "cli", RedeemMode::Poll, "x"), at(1_200_002)).await.unwrap(),
        Redeemed::Unknown
    );
    assert_eq!(
        s.sweep(at(3_600_001)).await.unwrap(),
        SweepReport { events: 0, grants: 0, sessions: 1, refresh_tokens: 0 }
    );
    assert!(!s.delete_session(&h("session-s"), at(3_600_002)).await.unwrap());
    assert!(s.refresh_token(&token).await.unwrap().is_some());
    assert_eq!(
        s.sweep(at(7_200_001)).await.unwrap(),
        SweepReport { events: 0, grants: 0, sessions: 0, refresh_tokens: 1 }
    );
    assert_eq!(s.refresh_token(&token).await.unwrap(), None);
    // The emptied family lingers a day, then goes, and with it the family's access.
    assert!(s.family_active(FamilyId(&subject.family_id), at(0)).await.unwrap());
    s.sweep(at(2000 + DAY_MS - 1)).await.unwrap();
    assert!(s.family_active(FamilyId(&subject.family_id), at(0)).await.unwrap());
    s.sweep(at(2000 + DAY_MS + 1)).await.unwrap();
    assert!(!s.family_active(FamilyId(&subject.family_id), at(0)).await.unwrap());
    assert_eq!(s.sweep(at(2 * DAY_MS)).await.unwrap(), SweepReport::default());
    verify_audit_log(s).await;
}

/// Pairings are swept once `GRACE_SECS` past their expiry, whatever became of them;
/// tokens collected from one outlive it.
pub async fn sweep_removes_old_pairings(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    for tag in ["old", "done"] {
        s.create_pairing(new_pairing(tag, at(0)), at(0)).await.unwrap();
    }
    s.decide_pairing(&h("phone-done"), UserId(&user.id), true, at(1000)).await.unwrap();
    let Collected::Tokens(subject, _) = s.collect_pairing(&h("desktop-done"), mint("done"), at(2000)).await.unwrap()
    else {
        panic!("approved pairing did not collect");
    };
    s.create_pairing(new_pairing("new", at(600_000)), at(600_000)).await.unwrap();

    let grace = latchkey_domain::pairing::GRACE_SECS * 1000;
    let expiry = latchkey_domain::pairing::LIFETIME_SECS * 1000;
    s.sweep(at(expiry)).await.unwrap();
    s.sweep(at(expiry + grace)).await.unwrap();
    for tag in ["old", "done", "new"] {
        assert!(
            s.pairing_by_desktop_secret(&h(&format!("desktop-{tag}"))).await.unwrap().is_some(),
            "pairing {tag} must be kept until {} s past its expiry",
            grace / 1000
        );
    }
    // Late pollers still hear what happened.
    assert_eq!(
        s.collect_pairing(&h("desktop-done"), mint("again"), at(expiry + grace)).await.unwrap(),
        Collected::Refused(PairingError::Finished)
    );

    s.sweep(at(expiry + grace + 1)).await.unwrap();
    for tag in ["old", "done"] {
        assert_eq!(s.pairing_by_desktop_secret(&h(&format!("desktop-{tag}"))).await.unwrap(), None, "{tag}");
        assert_eq!(s.pairing_by_phone_code(&h(&format!("phone-{tag}"))).await.unwrap(), None, "{tag}");
    }
    assert_eq!(
        s.collect_pairing(&h("desktop-done"), mint("again"), at(expiry + grace + 2)).await.unwrap(),
        Collected::NotFound
    );
    assert_eq!(
        s.decide_pairing(&h("phone-old"), UserId(&user.id), true, at(expiry + grace + 2)).await.unwrap(),
        PairingResult::NotFound
    );
    assert!(s.pairing_by_phone_code(&h("phone-new")).await.unwrap().is_some(), "a younger pairing stays");
    assert!(s.refresh_token(&refresh_hash("done")).await.unwrap().is_some(), "collected tokens outlive the pairing");
    assert!(s.family_active(FamilyId(&subject.family_id), at(0)).await.unwrap());

    s.sweep(at(600_000 + expiry + grace + 1)).await.unwrap();
    assert_eq!(s.pairing_by_phone_code(&h("phone-new")).await.unwrap(), None);
    verify_audit_log(s).await;
}

/// A one-time value is accepted once until it expires, by any number of racing
/// callers exactly once, again after it expired, and swept afterwards.
pub async fn values_are_used_once(store: Arc<dyn Store>) {
    let s = &*store;
    let k = [3u8; 32];
    assert!(s.first_use(k, at(1000), at(0)).await.unwrap());
    assert!(!s.first_use(k, at(2000), at(500)).await.unwrap(), "a replay within its time");
    assert!(s.first_use([4u8; 32], at(1000), at(500)).await.unwrap(), "another value");
    assert!(s.first_use(k, at(3000), at(1000)).await.unwrap(), "expired: usable again");
    let firsts = concurrently(16, |_| {
        let store = store.clone();
        async move { store.first_use([5u8; 32], at(9000), at(1)).await.unwrap() }
    })
    .await;
    assert_eq!(firsts.iter().filter(|f| **f).count(), 1, "exactly one racer wins: {firsts:?}");
    s.sweep(at(10_000)).await.unwrap();
    assert!(s.first_use([5u8; 32], at(20_000), at(10_000)).await.unwrap(), "swept, then new");
}
