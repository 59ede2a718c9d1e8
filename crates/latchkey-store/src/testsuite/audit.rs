//! Conformance checks: the audit chain.

use super::*;

/// Pages read back in order, and 32 concurrent appends still form one linear chain.
pub async fn audit_chain_under_concurrency(store: Arc<dyn Store>) {
    let s = &*store;
    assert_eq!(s.audit_head().await.unwrap(), ChainHead::EMPTY);
    assert_eq!(s.audit_entries(0, 100).await.unwrap(), vec![]);
    for i in 0..5 {
        let e = AuditEvent::new(AuditKind::SignInFailed, None, Some("mallory")).with_detail(format!("{{\"n\":{i}}}"));
        s.append_audit(e, at(i)).await.unwrap();
    }
    let seqs = |v: Vec<latchkey_domain::audit::AuditEntry>| -> Vec<i64> { v.into_iter().map(|e| e.seq).collect() };
    assert_eq!(seqs(s.audit_entries(0, 2).await.unwrap()), [1, 2]);
    assert_eq!(seqs(s.audit_entries(2, 2).await.unwrap()), [3, 4]);
    assert_eq!(seqs(s.audit_entries(4, 100).await.unwrap()), [5]);
    assert_eq!(seqs(s.audit_entries(5, 100).await.unwrap()), Vec::<i64>::new());
    let first = &s.audit_entries(0, 1).await.unwrap()[0];
    assert_eq!(first.prev_hash, GENESIS_HASH);
    assert_eq!(first.detail, "{\"n\":0}");

    concurrently(32, |i| {
        let store = store.clone();
        async move {
            let e = AuditEvent::new(AuditKind::SignInFailed, Some(format!("t{i}").as_str()), None);
            store.append_audit(e, at(100)).await.unwrap();
        }
    })
    .await;
    let head = verify_audit_chain(s).await;
    assert_eq!(head.seq, 37);
}

/// The audit page: newest first, filtered by person (actor or subject, each entry
/// once), by kind, or both; `before_seq` pages back without gaps or repeats; `limit` caps.
pub async fn audit_page_filters(store: Arc<dyn Store>) {
    let s = &*store;
    let page = |involving: Option<&str>, kind: Option<AuditKind>, before_seq: Option<i64>, limit: i64| {
        let f = AuditFilter {
            involving: involving.map(str::to_string),
            kind: kind.map(|k| k.as_str().to_string()),
            before_seq,
            limit,
            ..AuditFilter::default()
        };
        async move { s.audit_page(f).await.unwrap() }
    };
    assert_eq!(page(None, None, None, 10).await, vec![]);
    let events = [
        (AuditKind::SignInFailed, None, Some("alice")),
        (AuditKind::SignInSucceeded, Some("alice"), Some("alice")),
        (AuditKind::UserCreated, Some("admin"), Some("bob")),
        (AuditKind::AppUpdated, Some("alice"), Some("cli")),
        (AuditKind::SignInFailed, None, Some("bob")),
        (AuditKind::PairingApproved, Some("bob"), Some("pairing-1")),
        (AuditKind::PairingApproved, Some("alice"), Some("pairing-2")),
        (AuditKind::SignInFailed, None, Some("alicia")),
        (AuditKind::SignedOut, Some("alice"), Some("alice")),
        (AuditKind::UserCreated, Some("bob"), Some("alice")),
        (AuditKind::SignInFailed, Some("Alice"), None),
    ];
    for (i, (kind, actor, subject)) in events.iter().enumerate() {
        let e = AuditEvent::new(*kind, *actor, *subject).with_detail(format!("{{\"n\":{i}}}"));
        s.append_audit(e, at(i as i64)).await.unwrap();
    }
    let all = all_entries(s).await;
    let newest_first = |keep: &dyn Fn(&latchkey_domain::audit::AuditEntry) -> bool| {
        all.iter().rev().filter(|e| keep(e)).cloned().collect::<Vec<_>>()
    };
    let seqs = |v: &[latchkey_domain::audit::AuditEntry]| v.iter().map(|e| e.seq).collect::<Vec<_>>();

    // Unfiltered: every entry exactly as stored, newest first.
    assert_eq!(page(None, None, None, 100).await, newest_first(&|_| true));
    assert_eq!(seqs(&page(None, None, None, 3).await), [11, 10, 9]);
    assert_eq!(page(None, None, None, 0).await, vec![]);
    assert_eq!(seqs(&page(None, None, Some(5), 100).await), [4, 3, 2, 1]);
    assert_eq!(seqs(&page(None, None, Some(5), 2).await), [4, 3]);
    assert_eq!(page(None, None, Some(1), 100).await, vec![]);

    // A person's own events: as actor or subject, exact and case-sensitive, each once.
    let alice = page(Some("alice"), None, None, 100).await;
    assert_eq!(alice, newest_first(&|e| e.actor.as_deref() == Some("alice") || e.subject.as_deref() == Some("alice")));
    assert_eq!(seqs(&alice), [10, 9, 7, 4, 2, 1]);
    assert_eq!(seqs(&page(Some("bob"), None, None, 100).await), [10, 6, 5, 3]);
    assert_eq!(page(Some("carol"), None, None, 100).await, vec![]);

    // By kind, and by kind and person together.
    let failed = page(None, Some(AuditKind::SignInFailed), None, 100).await;
    assert_eq!(failed, newest_first(&|e| e.kind == AuditKind::SignInFailed.as_str()));
    assert_eq!(seqs(&failed), [11, 8, 5, 1]);
    assert_eq!(seqs(&page(None, Some(AuditKind::SignInFailed), None, 2).await), [11, 8]);
    assert_eq!(seqs(&page(None, Some(AuditKind::SignInFailed), Some(8), 100).await), [5, 1]);
    assert_eq!(seqs(&page(Some("alice"), Some(AuditKind::PairingApproved), None, 100).await), [7]);
    assert_eq!(seqs(&page(Some("bob"), Some(AuditKind::UserCreated), None, 100).await), [10, 3]);
    assert_eq!(page(Some("alice"), Some(AuditKind::KeyRotated), None, 100).await, vec![]);
    let none = AuditFilter { kind: Some("no.such.kind".into()), limit: 100, ..AuditFilter::default() };
    assert_eq!(s.audit_page(none).await.unwrap(), vec![]);

    // Paging back through a person's events two at a time sees each exactly once.
    let mut walked = Vec::new();
    let mut before = None;
    loop {
        let p = page(Some("alice"), None, before, 2).await;
        assert!(p.len() <= 2, "a page holds at most its limit: {:?}", seqs(&p));
        let Some(last) = p.last() else { break };
        before = Some(last.seq);
        walked.extend(p);
    }
    assert_eq!(walked, alice);
    verify_audit_chain(s).await;
}
