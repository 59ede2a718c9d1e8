//! Conformance checks: two stores on one database, for backends shared between processes.

use super::*;

/// Two stores on one database: 16 redeemers split between them, exactly one gets tokens.
pub async fn redeem_exactly_once_across_replicas(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let user = setup(&*a).await;
    a.create_device_grant(new_grant("x", at(0)), at(0))
        .await
        .unwrap();
    let d = b
        .decide_device_grant(decision("x", &user, Decision::Approve), at(1000))
        .await
        .unwrap();
    assert!(matches!(d, DecideResult::Decided(_)), "{d:?}");
    let results = concurrently(16, |i| {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move {
            store
                .redeem_device_grant(
                    redeem("x", "cli", RedeemMode::Poll, &format!("x{i}")),
                    at(2000),
                )
                .await
                .unwrap()
        }
    })
    .await;
    let tokens = results
        .iter()
        .filter(|r| matches!(r, Redeemed::Tokens(_)))
        .count();
    let spent = results.iter().filter(|r| **r == Redeemed::Spent).count();
    assert_eq!((tokens, spent), (1, 15), "{results:?}");
    assert_eq!(count_kind(&*a, AuditKind::GrantConsumed).await, 1);
    assert_eq!(verify_audit_chain(&*a).await, verify_audit_chain(&*b).await);
}

/// Two stores on one database: a decision on one wakes a waiter on the other.
pub async fn wakeup_across_replicas(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let user = setup(&*a).await;
    a.create_device_grant(new_grant("w", at(0)), at(0))
        .await
        .unwrap();
    let mut wait = b.notifier().subscribe("grant-w");
    let mut unrelated = b.notifier().subscribe("grant-unrelated");
    a.decide_device_grant(decision("w", &user, Decision::Approve), at(1000))
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(WAKE_TIMEOUT, wait.changed())
            .await
            .is_ok(),
        "a decision on one replica must wake waiters on another"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(200), unrelated.changed())
            .await
            .is_err(),
        "only waiters on the decided grant wake"
    );
    assert!(matches!(
        b.redeem_device_grant(redeem("w", "cli", RedeemMode::Wait, "w"), at(1500))
            .await
            .unwrap(),
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
            };
            store
                .add_signing_key(key, None, at(i as i64))
                .await
                .unwrap();
        }
    })
    .await;
    let keys = a.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 8);
    let active: Vec<&str> = keys
        .iter()
        .filter(|k| k.retired_at.is_none())
        .map(|k| k.kid.as_str())
        .collect();
    assert_eq!(
        active.len(),
        1,
        "exactly one signing key is active, not {active:?}"
    );
    assert_eq!(count_kind(&*a, AuditKind::KeyRotated).await, 8);
    verify_audit_chain(&*b).await;
}
