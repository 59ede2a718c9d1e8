//! Conformance checks: QR cross-device sign-in (pairings).

use super::*;

/// Pending, approved on the phone (waking the desktop's waiter), then 8 concurrent
/// collectors: exactly one starts a token family, the rest hear the code was used.
pub async fn pairing_approved_then_collected_once(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    let p = new_pairing("a", at(0));
    let before = all_entries(s).await.len();
    s.create_pairing(p.clone(), at(0)).await.unwrap();
    assert_eq!(all_entries(s).await.len(), before, "starting alone writes no audit entry (any desktop may)");
    let pending = pending_pairing(&p, at(0));
    assert_eq!(s.pairing_by_desktop_secret(&h("desktop-a")).await.unwrap(), Some(pending.clone()));

    // Collecting before the phone has approved changes nothing.
    let entries = all_entries(s).await.len();
    assert_eq!(
        s.collect_pairing(&h("desktop-a"), mint("early"), at(500)).await.unwrap(),
        Collected::Refused(PairingError::NotApproved)
    );
    assert_eq!(all_entries(s).await.len(), entries, "a refused collection records nothing");
    assert_eq!(s.refresh_token(&refresh_hash("early")).await.unwrap(), None, "and mints nothing");
    assert_eq!(s.pairing_by_desktop_secret(&h("desktop-a")).await.unwrap(), Some(pending.clone()));

    let mut wait = s.notifier().subscribe(&p.id);
    let mut unrelated = s.notifier().subscribe("pairing-unrelated");
    let got = s.decide_pairing(&h("phone-a"), UserId(&user.id), true, at(1000)).await.unwrap();
    let mut approved = pending.clone();
    approved.state.status = PairingStatus::Approved;
    approved.user_id = Some(user.id.clone());
    approved.decided_at = Some(at(1000));
    assert_eq!(got, PairingResult::Done(Box::new(approved.clone())));
    assert!(
        tokio::time::timeout(WAKE_TIMEOUT, wait.changed()).await.is_ok(),
        "approving a pairing must wake its waiters on the same store"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(100), unrelated.changed()).await.is_err(),
        "only waiters on the decided pairing wake"
    );
    assert_last_event(s, &events::pairing_decided(&p.id, &user.id, true), at(1000)).await;
    assert_eq!(s.pairing_by_phone_code(&h("phone-a")).await.unwrap(), Some(approved.clone()));
    assert_eq!(
        s.decide_pairing(&h("phone-a"), UserId(&user.id), false, at(1100)).await.unwrap(),
        PairingResult::Refused(PairingError::Finished),
        "a pairing is decided once"
    );

    let results = concurrently(8, |i| {
        let store = store.clone();
        async move { store.collect_pairing(&h("desktop-a"), mint(&format!("a{i}")), at(2000)).await.unwrap() }
    })
    .await;
    let winners: Vec<usize> = (0..8).filter(|&i| matches!(results[i], Collected::Tokens(..))).collect();
    assert_eq!(winners.len(), 1, "exactly one collector gets tokens: {results:?}");
    let w = winners[0];
    assert!(
        results.iter().enumerate().all(|(i, r)| i == w || *r == Collected::Refused(PairingError::Finished)),
        "every other collector hears the code was used: {results:?}"
    );
    let family = format!("family-a{w}");
    let mut consumed = approved.clone();
    consumed.state.status = PairingStatus::Consumed;
    let subject = TokenSubject {
        user_id: user.id.clone(),
        username: "dev".into(),
        client_id: "cli".into(),
        scope: "openid".into(),
        family_id: family.clone(),
        auth_time: at(1000),
        device_id: None,
        jkt: None,
    };
    assert_eq!(results[w], Collected::Tokens(subject, Box::new(consumed.clone())));
    assert_last_event(s, &events::pairing_consumed("cli", &p.id, &family), at(2000)).await;
    assert_eq!(count_kind(s, AuditKind::PairingConsumed).await, 1, "the family is started exactly once");
    for i in 0..8 {
        let token = s.refresh_token(&refresh_hash(&format!("a{i}"))).await.unwrap();
        if i == w {
            let token = token.unwrap_or_else(|| panic!("the winner's refresh token is missing"));
            assert_eq!(
                (token.family_id.as_str(), token.client_id.as_str(), token.user_id.as_str(), token.scope.as_str()),
                (family.as_str(), "cli", user.id.as_str(), "openid")
            );
            assert_eq!((token.device_id, token.jkt), (None, None));
        } else {
            assert_eq!(token, None, "collector {i} lost the race but its token was stored");
        }
    }
    assert!(s.family_active(FamilyId(&family), at(0)).await.unwrap());
    assert_eq!(s.pairing_by_desktop_secret(&h("desktop-a")).await.unwrap(), Some(consumed));
    assert_eq!(
        s.collect_pairing(&h("desktop-a"), mint("late"), at(3000)).await.unwrap(),
        Collected::Refused(PairingError::Finished)
    );
    assert_eq!(
        s.cancel_pairing(&h("desktop-a"), at(3000)).await.unwrap(),
        PairingResult::Refused(PairingError::Finished)
    );
    verify_audit_log(s).await;
}

/// Denied on the phone; cancelled by the desktop while pending and after approval:
/// each recorded, each waking the pairing's waiters, none ever collectable.
pub async fn pairing_denied_and_cancelled(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    let (d, c, ac) = (new_pairing("d", at(0)), new_pairing("c", at(0)), new_pairing("ac", at(0)));
    for p in [&d, &c, &ac] {
        s.create_pairing(p.clone(), at(0)).await.unwrap();
    }

    let mut wait = s.notifier().subscribe(&d.id);
    let mut denied = pending_pairing(&d, at(0));
    denied.state.status = PairingStatus::Denied;
    denied.user_id = Some(user.id.clone());
    denied.decided_at = Some(at(1000));
    assert_eq!(
        s.decide_pairing(&h("phone-d"), UserId(&user.id), false, at(1000)).await.unwrap(),
        PairingResult::Done(Box::new(denied.clone()))
    );
    assert!(tokio::time::timeout(WAKE_TIMEOUT, wait.changed()).await.is_ok(), "a denial must wake the desktop");
    assert_last_event(s, &events::pairing_decided(&d.id, &user.id, false), at(1000)).await;
    assert_eq!(s.pairing_by_desktop_secret(&h("desktop-d")).await.unwrap(), Some(denied));
    assert_eq!(
        s.collect_pairing(&h("desktop-d"), mint("d"), at(1100)).await.unwrap(),
        Collected::Refused(PairingError::Finished)
    );
    assert_eq!(
        s.decide_pairing(&h("phone-d"), UserId(&user.id), true, at(1100)).await.unwrap(),
        PairingResult::Refused(PairingError::Finished)
    );
    assert_eq!(
        s.cancel_pairing(&h("desktop-d"), at(1100)).await.unwrap(),
        PairingResult::Refused(PairingError::Finished)
    );
    assert_eq!(s.refresh_token(&refresh_hash("d")).await.unwrap(), None);

    let mut wait = s.notifier().subscribe(&c.id);
    let mut cancelled = pending_pairing(&c, at(0));
    cancelled.state.status = PairingStatus::Cancelled;
    assert_eq!(
        s.cancel_pairing(&h("desktop-c"), at(2000)).await.unwrap(),
        PairingResult::Done(Box::new(cancelled.clone()))
    );
    assert!(tokio::time::timeout(WAKE_TIMEOUT, wait.changed()).await.is_ok(), "a cancellation must wake waiters");
    assert_last_event(s, &events::pairing_cancelled("cli", &c.id), at(2000)).await;
    assert_eq!(s.pairing_by_phone_code(&h("phone-c")).await.unwrap(), Some(cancelled));
    assert_eq!(
        s.decide_pairing(&h("phone-c"), UserId(&user.id), true, at(2100)).await.unwrap(),
        PairingResult::Refused(PairingError::Finished),
        "a cancelled pairing cannot be approved"
    );
    assert_eq!(
        s.collect_pairing(&h("desktop-c"), mint("c"), at(2100)).await.unwrap(),
        Collected::Refused(PairingError::Finished)
    );

    // Approved, then the desktop gives up: the approval is kept on record, the tokens never minted.
    assert!(matches!(
        s.decide_pairing(&h("phone-ac"), UserId(&user.id), true, at(3000)).await.unwrap(),
        PairingResult::Done(_)
    ));
    let mut withdrawn = pending_pairing(&ac, at(0));
    withdrawn.state.status = PairingStatus::Cancelled;
    withdrawn.user_id = Some(user.id.clone());
    withdrawn.decided_at = Some(at(3000));
    assert_eq!(s.cancel_pairing(&h("desktop-ac"), at(4000)).await.unwrap(), PairingResult::Done(Box::new(withdrawn)));
    assert_last_event(s, &events::pairing_cancelled("cli", &ac.id), at(4000)).await;
    assert_eq!(
        s.collect_pairing(&h("desktop-ac"), mint("ac"), at(4100)).await.unwrap(),
        Collected::Refused(PairingError::Finished)
    );
    assert_eq!(s.refresh_token(&refresh_hash("ac")).await.unwrap(), None);

    assert_eq!(
        [
            count_kind(s, AuditKind::PairingRequested).await,
            count_kind(s, AuditKind::PairingApproved).await,
            count_kind(s, AuditKind::PairingDenied).await,
            count_kind(s, AuditKind::PairingCancelled).await,
            count_kind(s, AuditKind::PairingConsumed).await,
        ],
        [2, 1, 1, 2, 0],
        "a start is recorded with the phone's decision, and only then"
    );
    verify_audit_log(s).await;
}

/// At its expiry instant a pairing can no longer be decided, cancelled or collected,
/// even when already approved; refusals record nothing and mint nothing.
pub async fn pairing_expiry(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    let (p, a) = (new_pairing("p", at(0)), new_pairing("a", at(0)));
    s.create_pairing(p.clone(), at(0)).await.unwrap();
    s.create_pairing(a.clone(), at(0)).await.unwrap();
    let end = latchkey_domain::pairing::LIFETIME_SECS * 1000;
    assert_eq!(p.state.expires_at, at(end));
    assert!(
        matches!(
            s.decide_pairing(&h("phone-a"), UserId(&user.id), true, at(end - 1)).await.unwrap(),
            PairingResult::Done(_)
        ),
        "the last millisecond is still in time"
    );

    let entries = all_entries(s).await.len();
    let expired = PairingResult::Refused(PairingError::Expired);
    assert_eq!(s.decide_pairing(&h("phone-p"), UserId(&user.id), true, at(end)).await.unwrap(), expired);
    assert_eq!(s.decide_pairing(&h("phone-p"), UserId(&user.id), false, at(end + 1)).await.unwrap(), expired);
    assert_eq!(s.cancel_pairing(&h("desktop-p"), at(end)).await.unwrap(), expired);
    assert_eq!(
        s.collect_pairing(&h("desktop-p"), mint("p"), at(end)).await.unwrap(),
        Collected::Refused(PairingError::Expired)
    );
    assert_eq!(
        s.collect_pairing(&h("desktop-a"), mint("a"), at(end)).await.unwrap(),
        Collected::Refused(PairingError::Expired),
        "an approved pairing not collected in time is expired"
    );
    assert_eq!(all_entries(s).await.len(), entries, "refusals record nothing");
    assert_eq!(s.refresh_token(&refresh_hash("a")).await.unwrap(), None);
    // Expiry is derived, not stored: the records keep their last status.
    let stored = |r: Option<PairingRecord>| r.map(|r| r.state.status);
    assert_eq!(stored(s.pairing_by_phone_code(&h("phone-p")).await.unwrap()), Some(PairingStatus::Pending));
    assert_eq!(stored(s.pairing_by_desktop_secret(&h("desktop-a")).await.unwrap()), Some(PairingStatus::Approved));
    verify_audit_log(s).await;
}

/// Lookups by either secret (never the other's), unknown secrets, taken codes, unknown apps.
pub async fn pairing_lookups_and_refusals(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    let p = new_pairing("l", at(0));
    s.create_pairing(p.clone(), at(10)).await.unwrap();
    let pending = pending_pairing(&p, at(10));
    assert_eq!(s.pairing_by_phone_code(&h("phone-l")).await.unwrap(), Some(pending.clone()));
    assert_eq!(s.pairing_by_desktop_secret(&h("desktop-l")).await.unwrap(), Some(pending.clone()));
    assert_eq!(s.pairing_by_phone_code(&h("desktop-l")).await.unwrap(), None, "the desktop secret is no phone code");
    assert_eq!(s.pairing_by_desktop_secret(&h("phone-l")).await.unwrap(), None, "the phone code is no desktop secret");
    assert_eq!(s.pairing_by_phone_code(&h("phone-x")).await.unwrap(), None);
    assert_eq!(s.pairing_by_desktop_secret(&h("desktop-x")).await.unwrap(), None);

    let entries = all_entries(s).await.len();
    // Each secret works only for its own side.
    assert_eq!(
        s.decide_pairing(&h("desktop-l"), UserId(&user.id), true, at(100)).await.unwrap(),
        PairingResult::NotFound
    );
    assert_eq!(s.cancel_pairing(&h("phone-l"), at(100)).await.unwrap(), PairingResult::NotFound);
    assert_eq!(s.collect_pairing(&h("phone-l"), mint("l"), at(100)).await.unwrap(), Collected::NotFound);
    assert_eq!(
        s.decide_pairing(&h("phone-x"), UserId(&user.id), true, at(100)).await.unwrap(),
        PairingResult::NotFound
    );
    assert_eq!(s.cancel_pairing(&h("desktop-x"), at(100)).await.unwrap(), PairingResult::NotFound);
    assert_eq!(s.collect_pairing(&h("desktop-x"), mint("l"), at(100)).await.unwrap(), Collected::NotFound);

    let mut same_phone = new_pairing("l2", at(0));
    same_phone.phone_code_hash = h("phone-l");
    let r = s.create_pairing(same_phone, at(200)).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "a taken phone code must be a conflict, got {r:?}");
    let mut same_desktop = new_pairing("l3", at(0));
    same_desktop.desktop_secret_hash = h("desktop-l");
    let r = s.create_pairing(same_desktop, at(200)).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "a taken desktop secret must be a conflict, got {r:?}");
    let mut orphan = new_pairing("orphan", at(0));
    orphan.client_id = "no-such-app".into();
    let r = s.create_pairing(orphan, at(200)).await;
    assert!(matches!(r, Err(StoreError::Database(_))), "a pairing for an unknown app is a database error, got {r:?}");
    assert_eq!(all_entries(s).await.len(), entries, "refusals record nothing");
    assert_eq!(s.pairing_by_phone_code(&h("phone-l")).await.unwrap(), Some(pending), "and change nothing");
    assert_eq!(s.pairing_by_desktop_secret(&h("desktop-orphan")).await.unwrap(), None);
    verify_audit_log(s).await;
}

/// A QR sign-in that continues a web sign-in: of 6 concurrent collectors exactly
/// one opens a browser session for the approver (with the desktop's address),
/// recorded with it; it is never collected as tokens, nor a native one as a session.
pub async fn web_pairing_opens_one_browser_session(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    let web = NewPairing { continues: Some("client_id=cli&response_type=code".into()), ..new_pairing("w", at(0)) };
    s.create_pairing(web.clone(), at(0)).await.unwrap();
    s.create_pairing(new_pairing("n", at(0)), at(0)).await.unwrap();
    for phone in ["phone-w", "phone-n"] {
        s.decide_pairing(&h(phone), UserId(&user.id), true, at(1000)).await.unwrap();
    }
    let seed = |i: usize| SessionSeed {
        token_hash: h(&format!("web-session-{i}")),
        id: format!("sid-w{i}"),
        expires_at: at(9_000_000),
    };

    // Each kind only its own way; a refusal consumes nothing.
    assert_eq!(
        s.collect_pairing(&h("desktop-w"), mint("wrong"), at(1500)).await.unwrap(),
        Collected::Refused(PairingError::WrongChannel)
    );
    assert_eq!(
        s.collect_pairing_session(&h("desktop-n"), seed(99), at(1500)).await.unwrap(),
        Collected::Refused(PairingError::WrongChannel)
    );
    assert!(matches!(s.collect_pairing(&h("desktop-n"), mint("n"), at(1500)).await.unwrap(), Collected::Tokens(..)));

    let results = concurrently(6, |i| {
        let store = store.clone();
        async move { store.collect_pairing_session(&h("desktop-w"), seed(i), at(2000)).await.unwrap() }
    })
    .await;
    let winners: Vec<usize> = (0..6).filter(|&i| matches!(results[i], Collected::Session(_))).collect();
    assert_eq!(winners.len(), 1, "exactly one collector opens a session: {results:?}");
    let w = winners[0];
    let Collected::Session(p) = &results[w] else { unreachable!() };
    assert_eq!(p.continues, web.continues);
    for i in 0..6 {
        let opened = s.session(&h(&format!("web-session-{i}")), at(2001)).await.unwrap();
        assert_eq!(opened.is_some(), i == w, "only the winner's session exists ({i})");
    }
    let session = s.session(&h(&format!("web-session-{w}")), at(2001)).await.unwrap().unwrap();
    assert_eq!(session.user.id, user.id);
    assert_last_event(s, &events::pairing_consumed_by_browser("cli", &web.id, &format!("sid-w{w}")), at(2000)).await;
    assert_eq!(count_kind(s, AuditKind::SignInSucceeded).await, 1, "the sign-in is recorded once, with its session");
}
