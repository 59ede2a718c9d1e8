//! Conformance checks: two stores on one database, for backends shared between processes.

use super::*;

/// Two stores on one database: 16 redeemers split between them, exactly one gets tokens.
pub async fn redeem_exactly_once_across_replicas(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let user = setup(&*a).await;
    a.create_device_grant(new_grant("x", at(0)), at(0)).await.unwrap();
    let d = b.decide_device_grant(decision("x", &user, Decision::Approve), at(1000)).await.unwrap();
    assert!(matches!(d, DecideResult::Decided(_)), "{d:?}");
    let results = concurrently(16, |i| {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move {
            store.redeem_device_grant(redeem("x", "cli", RedeemMode::Poll, &format!("x{i}")), at(2000)).await.unwrap()
        }
    })
    .await;
    let tokens = results.iter().filter(|r| matches!(r, Redeemed::Tokens(_))).count();
    let spent = results.iter().filter(|r| **r == Redeemed::Spent).count();
    assert_eq!((tokens, spent), (1, 15), "{results:?}");
    assert_eq!(count_kind(&*a, AuditKind::GrantConsumed).await, 1);
    assert_eq!(verify_audit_log(&*a).await, verify_audit_log(&*b).await);
}

/// Two stores on one database: a decision on one wakes a waiter on the other.
pub async fn wakeup_across_replicas(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let user = setup(&*a).await;
    a.create_device_grant(new_grant("w", at(0)), at(0)).await.unwrap();
    let mut wait = b.notifier().subscribe("grant-w");
    let mut unrelated = b.notifier().subscribe("grant-unrelated");
    a.decide_device_grant(decision("w", &user, Decision::Approve), at(1000)).await.unwrap();
    assert!(
        tokio::time::timeout(WAKE_TIMEOUT, wait.changed()).await.is_ok(),
        "a decision on one replica must wake waiters on another"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(200), unrelated.changed()).await.is_err(),
        "only waiters on the decided grant wake"
    );
    assert!(matches!(
        b.redeem_device_grant(redeem("w", "cli", RedeemMode::Wait, "w"), at(1500)).await.unwrap(),
        Redeemed::Tokens(_)
    ));
}

/// Two stores on one database: concurrent key rotations leave exactly one active key.
pub async fn key_rotation_across_replicas(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    concurrently(8, |i| {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move {
            let key = SigningKeyRecord {
                kid: format!("k{i}"),
                private_pkcs8: vec![1, 2, 3],
                public_key: vec![4; 32],
                created_at: at(i as i64),
                retired_at: None,
                alg: IdTokenAlg::EdDSA,
            };
            store.add_signing_key(key, None, at(i as i64)).await.unwrap();
        }
    })
    .await;
    let keys = a.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 8);
    let active: Vec<&str> = keys.iter().filter(|k| k.retired_at.is_none()).map(|k| k.kid.as_str()).collect();
    assert_eq!(active.len(), 1, "exactly one signing key is active, not {active:?}");
    assert_eq!(count_kind(&*a, AuditKind::KeyRotated).await, 8);
    verify_audit_log(&*b).await;
}

/// Two stores on one database: approvals for one owner split between them respect
/// the device cap and never share a slug, and a single-use enrollment key used
/// on both at once enrolls exactly one device.
pub async fn devices_across_replicas(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let user = setup(&*a).await;
    for i in 0..8 {
        a.create_device_grant(new_grant(&format!("r{i}"), at(0)), at(0)).await.unwrap();
    }
    let results = concurrently(8, |i| {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let mut d = decision(&format!("r{i}"), &user, Decision::Approve);
        d.device_cap = 5;
        async move { store.decide_device_grant(d, at(1000)).await.unwrap() }
    })
    .await;
    let decided = results.iter().filter(|r| matches!(r, DecideResult::Decided(_))).count();
    let limited = results.iter().filter(|r| **r == DecideResult::DeviceLimit(5)).count();
    assert_eq!((decided, limited), (5, 3), "{results:?}");
    let mut slugs: Vec<String> = b.devices(UserId(&user.id)).await.unwrap().into_iter().map(|d| d.slug).collect();
    slugs.sort();
    assert_eq!(slugs, ["laptop", "laptop-2", "laptop-3", "laptop-4", "laptop-5"]);

    a.create_enrollment_key(
        NewEnrollmentKey {
            id: "once".into(),
            key_hash: h("enroll-once"),
            owner_id: user.id.clone(),
            reusable: false,
            expires_at: at(DAY_MS),
            tag: None,
            created_by: user.id.clone(),
        },
        at(2000),
    )
    .await
    .unwrap();
    let results = concurrently(8, |i| {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let e = Enroll {
            key_hash: h("enroll-once"),
            device_id: format!("dev-e{i}"),
            name: "Runner".into(),
            device: DeviceRequest::default(),
            client_id: "cli".into(),
            scope: "openid".into(),
            mint: mint(&format!("e{i}")),
            device_cap: DEFAULT_DEVICE_CAP,
        };
        async move { store.enroll_device(e, at(3000)).await.unwrap() }
    })
    .await;
    let enrolled = results.iter().filter(|r| matches!(r, Enrolled::Tokens { .. })).count();
    let used = results.iter().filter(|r| **r == Enrolled::Refused(EnrollError::Used)).count();
    assert_eq!((enrolled, used), (1, 7), "{results:?}");
    assert_eq!(a.devices(UserId(&user.id)).await.unwrap().len(), 6);
    assert_eq!(verify_audit_log(&*a).await, verify_audit_log(&*b).await);
}

/// Two stores on one database: 16 collectors of one approved pairing, split
/// between them; exactly one starts a token family.
pub async fn pairing_collected_once_across_replicas(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let user = setup(&*a).await;
    a.create_pairing(new_pairing("x", at(0)), at(0)).await.unwrap();
    let d = b.decide_pairing(&h("phone-x"), UserId(&user.id), true, at(1000)).await.unwrap();
    assert!(matches!(d, PairingResult::Done(_)), "{d:?}");
    let results = concurrently(16, |i| {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { store.collect_pairing(&h("desktop-x"), mint(&format!("x{i}")), at(2000)).await.unwrap() }
    })
    .await;
    let tokens = results.iter().filter(|r| matches!(r, Collected::Tokens(..))).count();
    let used = results.iter().filter(|r| **r == Collected::Refused(PairingError::Finished)).count();
    assert_eq!((tokens, used), (1, 15), "{results:?}");
    assert_eq!(count_kind(&*a, AuditKind::PairingConsumed).await, 1);
    assert_eq!(verify_audit_log(&*a).await, verify_audit_log(&*b).await);
}

/// Two stores on one database: a pairing decided on one wakes a waiter on the
/// other, and so does a cancellation the other way round.
pub async fn pairing_wakeup_across_replicas(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let user = setup(&*a).await;
    a.create_pairing(new_pairing("w", at(0)), at(0)).await.unwrap();
    a.create_pairing(new_pairing("c", at(0)), at(0)).await.unwrap();
    let mut wait = b.notifier().subscribe("pairing-w");
    let mut unrelated = b.notifier().subscribe("pairing-unrelated");
    let d = a.decide_pairing(&h("phone-w"), UserId(&user.id), true, at(1000)).await.unwrap();
    assert!(matches!(d, PairingResult::Done(_)), "{d:?}");
    assert!(
        tokio::time::timeout(WAKE_TIMEOUT, wait.changed()).await.is_ok(),
        "a pairing decided on one replica must wake waiters on another"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(200), unrelated.changed()).await.is_err(),
        "only waiters on the decided pairing wake"
    );
    assert!(matches!(b.collect_pairing(&h("desktop-w"), mint("w"), at(1500)).await.unwrap(), Collected::Tokens(..)));

    let mut wait = a.notifier().subscribe("pairing-c");
    let c = b.cancel_pairing(&h("desktop-c"), at(2000)).await.unwrap();
    assert!(matches!(c, PairingResult::Done(_)), "{c:?}");
    assert!(
        tokio::time::timeout(WAKE_TIMEOUT, wait.changed()).await.is_ok(),
        "a pairing cancelled on one replica must wake waiters on another"
    );
}
