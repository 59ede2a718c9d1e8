//! Conformance checks: housekeeping.

use super::*;

/// Sweeping removes expired grants (after a grace), sessions, tokens, then empty families.
pub async fn sweep_removes_expired(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    s.create_device_grant(new_grant("open", at(0)), at(0)).await.unwrap();
    s.create_session(
        NewSession {
            token_hash: h("session-s"),
            user_id: user.id.clone(),
            expires_at: at(3_600_000),
            audit: AuditEvent::new(AuditKind::SignInSucceeded, Some(&user.id), Some(&user.id)),
        },
        at(0),
    )
    .await
    .unwrap();
    s.create_device_grant(new_grant("tok", at(0)), at(0)).await.unwrap();
    s.decide_device_grant(decision("tok", &user, Decision::Approve), at(1000)).await.unwrap();
    let mut r = redeem("tok", "cli", RedeemMode::Poll, "tok");
    r.mint.expires_at = at(7_200_000);
    let Redeemed::Tokens(subject) = s.redeem_device_grant(r, at(2000)).await.unwrap() else {
        panic!("approved grant did not redeem");
    };
    let token = mint("tok").token_hash;

    assert_eq!(s.sweep(at(0)).await.unwrap(), SweepReport::default());
    // Grants are kept ten minutes past expiry, so late polls hear "expired".
    assert_eq!(s.sweep(at(1_200_000)).await.unwrap(), SweepReport::default());
    assert_eq!(
        s.redeem_device_grant(redeem("open", "cli", RedeemMode::Poll, "x"), at(1_200_000)).await.unwrap(),
        Redeemed::Expired
    );
    assert_eq!(s.sweep(at(1_200_001)).await.unwrap(), SweepReport { grants: 2, sessions: 0, refresh_tokens: 0 });
    assert_eq!(s.device_grant_by_user_code(&h("user-open")).await.unwrap(), None);
    assert_eq!(
        s.redeem_device_grant(redeem("open", "cli", RedeemMode::Poll, "x"), at(1_200_002)).await.unwrap(),
        Redeemed::Unknown
    );
    assert_eq!(s.sweep(at(3_600_001)).await.unwrap(), SweepReport { grants: 0, sessions: 1, refresh_tokens: 0 });
    assert!(!s.delete_session(&h("session-s"), at(3_600_002)).await.unwrap());
    assert!(s.refresh_token(&token).await.unwrap().is_some());
    assert_eq!(s.sweep(at(7_200_001)).await.unwrap(), SweepReport { grants: 0, sessions: 0, refresh_tokens: 1 });
    assert_eq!(s.refresh_token(&token).await.unwrap(), None);
    // The emptied family lingers a day, then goes, and with it the family's access.
    assert!(s.family_active(&subject.family_id).await.unwrap());
    s.sweep(at(2000 + DAY_MS - 1)).await.unwrap();
    assert!(s.family_active(&subject.family_id).await.unwrap());
    s.sweep(at(2000 + DAY_MS + 1)).await.unwrap();
    assert!(!s.family_active(&subject.family_id).await.unwrap());
    assert_eq!(s.sweep(at(2 * DAY_MS)).await.unwrap(), SweepReport::default());
    verify_audit_chain(s).await;
}
