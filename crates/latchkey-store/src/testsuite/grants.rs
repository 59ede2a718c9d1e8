//! Conformance checks: RFC 8628 device grants (decisions, redemption, polling rules).

use super::*;

/// Approve, wake local waiters, then 16 concurrent redeemers: exactly one gets tokens.
pub async fn grant_redeemed_exactly_once(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    let g = new_grant("a", at(0));
    let before = all_entries(s).await.len();
    s.create_device_grant(g.clone(), at(0)).await.unwrap();
    assert_eq!(all_entries(s).await.len(), before, "asking alone writes no audit entry (anyone may ask)");
    let pending = DeviceGrantRecord {
        id: g.id.clone(),
        client_id: "cli".into(),
        scope: g.scope.clone(),
        state: g.state.clone(),
        created_at: at(0),
        requester: g.requester.clone(),
        user_id: None,
        decided_at: None,
        device: g.device.clone(),
        device_id: None,
    };
    assert_eq!(grant(s, "a").await, pending);

    let mut wait = s.notifier().subscribe(&g.id);
    let d = decision("a", &user, Decision::Approve);
    let got = s.decide_device_grant(d.clone(), at(10_000)).await.unwrap();
    let mut approved = pending.clone();
    approved.state.status = GrantStatus::Approved;
    approved.user_id = Some(user.id.clone());
    approved.decided_at = Some(at(10_000));
    approved.device_id = Some("dev-a".into());
    assert_eq!(got, DecideResult::Decided(Box::new(approved.clone())));
    assert!(
        tokio::time::timeout(WAKE_TIMEOUT, wait.changed()).await.is_ok(),
        "a decision must wake waiters on the same store"
    );
    // The request is recorded with its decision, in the same transaction.
    let recorded = [events::grant_requested(&approved), events::grant_decided(&d, &g.id)];
    assert_last_events(s, &recorded, at(10_000)).await;
    assert_eq!(grant(s, "a").await, approved);
    assert_eq!(
        s.decide_device_grant(decision("a", &user, Decision::Deny), at(11_000)).await.unwrap(),
        DecideResult::Refused(DecideError::AlreadyDecided)
    );

    let results = concurrently(16, |i| {
        let store = store.clone();
        let mode = if i % 2 == 0 { RedeemMode::Poll } else { RedeemMode::Wait };
        async move { store.redeem_device_grant(redeem("a", "cli", mode, &format!("a{i}")), at(20_000)).await.unwrap() }
    })
    .await;
    let winners: Vec<usize> = (0..16).filter(|&i| matches!(results[i], Redeemed::Tokens(_))).collect();
    assert_eq!(winners.len(), 1, "exactly one redeemer gets tokens: {results:?}");
    let w = winners[0];
    assert!(
        results.iter().enumerate().all(|(i, r)| i == w || *r == Redeemed::Spent),
        "every other redeemer hears the code is spent: {results:?}"
    );
    let family = format!("family-a{w}");
    assert_eq!(
        results[w],
        Redeemed::Tokens(TokenSubject {
            user_id: user.id.clone(),
            username: "dev".into(),
            client_id: "cli".into(),
            scope: "openid profile".into(),
            family_id: family.clone(),
            auth_time: at(10_000),
            device_id: Some("dev-a".into()),
            jkt: None,
        })
    );
    assert_eq!(
        s.refresh_token(&refresh_hash(&format!("a{w}"))).await.unwrap(),
        Some(RefreshTokenRecord {
            family_id: family.clone(),
            client_id: "cli".into(),
            user_id: user.id.clone(),
            username: "dev".into(),
            scope: "openid profile".into(),
            created_at: at(20_000),
            expires_at: at(30 * DAY_MS),
            rotated_at: None,
            family_revoked: false,
            device_id: Some("dev-a".into()),
            jkt: None,
        })
    );
    assert!(s.family_active(FamilyId(&family), at(0)).await.unwrap());
    for i in (0..16).filter(|&i| i != w) {
        let m = mint(&format!("a{i}"));
        assert_eq!(s.refresh_token(&refresh_hash(&format!("a{i}"))).await.unwrap(), None);
        assert!(!s.family_active(FamilyId(&m.new_family_id), at(0)).await.unwrap());
    }
    assert_last_event(s, &events::grant_consumed("cli", &g.id, &family), at(20_000)).await;
    assert_eq!(count_kind(s, AuditKind::GrantConsumed).await, 1);
    for mode in [RedeemMode::Poll, RedeemMode::Wait] {
        assert_eq!(s.redeem_device_grant(redeem("a", "cli", mode, "late"), at(21_000)).await.unwrap(), Redeemed::Spent);
    }
    assert_eq!(grant(s, "a").await.state.status, GrantStatus::Consumed);
    verify_audit_log(s).await;
}

/// A denied grant says so to polls and waits, and cannot be decided again.
pub async fn grant_denied(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    s.create_device_grant(new_grant("d", at(0)), at(0)).await.unwrap();
    let d = decision("d", &user, Decision::Deny);
    let DecideResult::Decided(g) = s.decide_device_grant(d.clone(), at(5000)).await.unwrap() else {
        panic!("deny was not recorded");
    };
    assert_eq!(g.state.status, GrantStatus::Denied);
    assert_eq!(g.user_id.as_deref(), Some(user.id.as_str()));
    assert_eq!(g.decided_at, Some(at(5000)));
    assert_last_event(s, &events::grant_decided(&d, &g.id), at(5000)).await;
    assert_eq!(kinds(s).await.last().map(String::as_str), Some("grant.denied"));
    for mode in [RedeemMode::Poll, RedeemMode::Wait] {
        assert_eq!(s.redeem_device_grant(redeem("d", "cli", mode, "d"), at(6000)).await.unwrap(), Redeemed::Denied);
    }
    assert_eq!(
        s.decide_device_grant(decision("d", &user, Decision::Approve), at(7000)).await.unwrap(),
        DecideResult::Refused(DecideError::AlreadyDecided)
    );
    assert_eq!(
        s.decide_device_grant(decision("nope", &user, Decision::Approve), at(7000)).await.unwrap(),
        DecideResult::NotFound
    );
    assert_eq!(grant(s, "d").await.state.status, GrantStatus::Denied);
    verify_audit_log(s).await;
}

/// At `expires_at` a grant can no longer be decided or redeemed, even if approved.
pub async fn grant_expiry(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    s.create_device_grant(new_grant("e", at(0)), at(0)).await.unwrap();
    let before = kinds(s).await;
    assert_eq!(
        s.decide_device_grant(decision("e", &user, Decision::Approve), at(600_000)).await.unwrap(),
        DecideResult::Refused(DecideError::Expired)
    );
    assert_eq!(kinds(s).await, before, "a refused decision records nothing");
    assert_eq!(grant(s, "e").await.state.status, GrantStatus::Pending);
    for mode in [RedeemMode::Poll, RedeemMode::Wait] {
        assert_eq!(s.redeem_device_grant(redeem("e", "cli", mode, "e"), at(600_000)).await.unwrap(), Redeemed::Expired);
    }

    // Approved but never collected: tokens are not handed out late.
    s.create_device_grant(new_grant("late", at(0)), at(0)).await.unwrap();
    s.decide_device_grant(decision("late", &user, Decision::Approve), at(1000)).await.unwrap();
    assert_eq!(
        s.redeem_device_grant(redeem("late", "cli", RedeemMode::Poll, "late"), at(600_000)).await.unwrap(),
        Redeemed::Expired
    );
    assert_eq!(grant(s, "late").await.state.status, GrantStatus::Approved);
    assert_eq!(count_kind(s, AuditKind::GrantConsumed).await, 0);
    verify_audit_log(s).await;
}

/// Polling faster than the interval adds 5 s each time; waiting never counts as a poll.
pub async fn grant_slow_down_and_wait(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    s.create_device_grant(new_grant("s", at(0)), at(0)).await.unwrap();
    let pending = Redeemed::Pending { grant_id: "grant-s".into(), expires_at: at(600_000) };
    let poll = |now| s.redeem_device_grant(redeem("s", "cli", RedeemMode::Poll, "s"), now);
    let wait = |now| s.redeem_device_grant(redeem("s", "cli", RedeemMode::Wait, "s"), now);

    assert_eq!(wait(at(500)).await.unwrap(), pending);
    assert_eq!(grant(s, "s").await.state.last_polled_at, None);
    assert_eq!(poll(at(1000)).await.unwrap(), pending);
    let st = grant(s, "s").await.state;
    assert_eq!((st.last_polled_at, st.interval_secs), (Some(at(1000)), 5));
    assert_eq!(poll(at(2000)).await.unwrap(), Redeemed::SlowDown { interval_secs: 10 });
    let st = grant(s, "s").await.state;
    assert_eq!((st.last_polled_at, st.interval_secs), (Some(at(2000)), 10));
    for now in [at(2500), at(2600), at(2700)] {
        assert_eq!(wait(now).await.unwrap(), pending);
    }
    let st = grant(s, "s").await.state;
    assert_eq!((st.last_polled_at, st.interval_secs), (Some(at(2000)), 10), "waiting must not count as a poll");
    assert_eq!(poll(at(3000)).await.unwrap(), Redeemed::SlowDown { interval_secs: 15 });
    assert_eq!(poll(at(18_000)).await.unwrap(), pending);
    let st = grant(s, "s").await.state;
    assert_eq!((st.last_polled_at, st.interval_secs), (Some(at(18_000)), 15));

    // Readiness is never delayed by slow_down.
    s.decide_device_grant(decision("s", &user, Decision::Approve), at(18_100)).await.unwrap();
    assert!(matches!(poll(at(18_200)).await.unwrap(), Redeemed::Tokens(_)));
    verify_audit_log(s).await;
}

/// A device code presented by another client is unknown and changes nothing; codes are unique.
pub async fn grant_client_mismatch(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    s.create_app(public_app("other", at(0)), None, at(0)).await.unwrap();
    s.create_device_grant(new_grant("m", at(0)), at(0)).await.unwrap();
    for mode in [RedeemMode::Poll, RedeemMode::Wait] {
        assert_eq!(s.redeem_device_grant(redeem("m", "other", mode, "m1"), at(1000)).await.unwrap(), Redeemed::Unknown);
    }
    assert_eq!(grant(s, "m").await.state.last_polled_at, None);
    assert_eq!(
        s.redeem_device_grant(redeem("nope", "cli", RedeemMode::Poll, "m2"), at(1000)).await.unwrap(),
        Redeemed::Unknown
    );
    s.decide_device_grant(decision("m", &user, Decision::Approve), at(2000)).await.unwrap();
    assert_eq!(
        s.redeem_device_grant(redeem("m", "other", RedeemMode::Poll, "m3"), at(3000)).await.unwrap(),
        Redeemed::Unknown
    );
    assert!(matches!(
        s.redeem_device_grant(redeem("m", "cli", RedeemMode::Poll, "m4"), at(3000)).await.unwrap(),
        Redeemed::Tokens(_)
    ));

    let before = kinds(s).await;
    let mut same_device = new_grant("m", at(0));
    same_device.id = "grant-m-again".into();
    same_device.user_code_hash = h("user-fresh");
    let mut same_user = new_grant("m", at(0));
    same_user.id = "grant-m-again2".into();
    same_user.device_code_hash = h("device-fresh");
    for g in [same_device, same_user] {
        let r = s.create_device_grant(g, at(4000)).await;
        assert!(matches!(r, Err(StoreError::Conflict(_))), "a reused code must be a conflict, got {r:?}");
    }
    assert_eq!(kinds(s).await, before, "a refused grant records nothing");
    verify_audit_log(s).await;
}

/// A grant for an app that does not exist is an error, but not a "conflict"
/// (nothing is taken); reporting it as one would send callers down the wrong path.
pub async fn grant_for_unknown_app_is_not_a_conflict(store: Arc<dyn Store>) {
    let s = &*store;
    let mut g = new_grant("orphan", at(0));
    g.client_id = "no-such-app".into();
    let r = s.create_device_grant(g, at(0)).await;
    assert!(
        matches!(r, Err(StoreError::Database(_))),
        "a grant for an unknown app must fail as a database error, got {r:?}"
    );
    assert_eq!(kinds(s).await, Vec::<String>::new(), "a refused grant records nothing");
}
