//! Conformance checks: the audit chain.

use super::*;

/// Pages read back in order; 32 concurrent appends and 8 concurrent seals give one
/// tree with every entry sealed exactly once; proofs of every kind verify, and
/// checkpoints are signed by every key that still signs (a rotation co-signs).
pub async fn audit_tree_under_concurrency(store: Arc<dyn Store>) {
    use latchkey_domain::merkle;
    let s = &*store;
    assert_eq!(s.audit_tree().await.unwrap().size, 0);
    assert_eq!(s.audit_entries(0, 100).await.unwrap(), vec![]);
    assert_eq!(s.seal_audit(at(0), 100).await.unwrap(), None, "nothing waits");
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
    assert_eq!((first.chain, first.leaf, first.detail.as_str()), (None, None, "{\"n\":0}"));

    // The first key; a second start-up does not add another.
    assert!(s.add_audit_key(test_audit_key(), false, "system".into(), at(0)).await.unwrap());
    assert!(!s.add_audit_key(test_audit_key(), false, "system".into(), at(0)).await.unwrap());
    let sealed = s.seal_audit(at(10), 3).await.unwrap().unwrap();
    assert_eq!((sealed.entries, sealed.size, sealed.oldest_at), (3, 3, at(0)), "a batch is capped");
    let (size, _) = verify_audit_log(s).await;
    assert_eq!(size, 5);
    assert_eq!(
        s.audit_entries(0, 100).await.unwrap().iter().map(|e| e.leaf).collect::<Vec<_>>(),
        (0..5).map(Some).collect::<Vec<_>>()
    );

    let cp5 = s.audit_tree().await.unwrap();
    concurrently(40, |i| {
        let store = store.clone();
        async move {
            if i % 5 == 0 {
                store.seal_audit(at(100), 7).await.unwrap();
            } else {
                let e = AuditEvent::new(AuditKind::SignInFailed, Some(format!("t{i}").as_str()), None);
                store.append_audit(e, at(100)).await.unwrap();
            }
        }
    })
    .await;
    let (size, root) = verify_audit_log(s).await;
    assert_eq!(size, 37);

    // Inclusion of every entry, and consistency from the earlier checkpoint, verify against the roots.
    let all = all_entries(s).await; // by seq, as the proofs are
    let proofs = s.audit_inclusions(all.iter().map(|e| e.seq).collect(), None).await.unwrap().unwrap();
    assert_eq!(proofs.len(), 37);
    for (p, e) in proofs.iter().zip(&all) {
        assert_eq!((p.seq, Some(p.leaf as i64), p.size), (e.seq, e.leaf, 37));
        assert_eq!(p.leaf_hash, latchkey_domain::audit::leaf_hash(e));
        merkle::verify_inclusion(&p.leaf_hash, p.leaf, p.size, &p.hashes, &root).unwrap();
    }
    let old = s.audit_inclusions(vec![all[0].seq, all[30].seq], Some(5)).await.unwrap().unwrap();
    assert_eq!(old.len(), 1, "entries sealed after size 5 are not in that tree");
    merkle::verify_inclusion(&old[0].leaf_hash, 0, 5, &old[0].hashes, &cp5.root).unwrap();
    let (new, proof) = s.audit_consistency(5, None).await.unwrap().unwrap();
    assert_eq!(new, 37);
    merkle::verify_consistency(5, 37, &cp5.root, &root, &proof).unwrap();
    assert!(s.audit_consistency(38, None).await.unwrap().is_err(), "no proof past the log");
    assert!(s.audit_inclusions(vec![1], Some(38)).await.unwrap().is_err());

    // A rotation: the old key co-signs for a while, and the change is recorded (and sealed).
    let mut next = test_audit_key();
    next.seed = [8u8; 32];
    next.key_id = latchkey_domain::signed_note::NoteSigner::new(&next.name, &next.seed).unwrap().key_id();
    assert!(s.add_audit_key(next.clone(), true, "admin".into(), at(1000)).await.unwrap());
    assert_eq!(count_kind(s, AuditKind::AuditKeyAdded).await, 1);
    let keys = s.audit_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys[0].retired_at.is_some() && keys[1].retired_at.is_none(), "{keys:?}");
    s.seal_audit(at(2000), 100).await.unwrap().unwrap();
    let note = s.audit_tree().await.unwrap().checkpoint.unwrap();
    let old_key = latchkey_domain::signed_note::NoteSigner::new(&keys[0].name, &keys[0].seed).unwrap().verifier();
    let new_key = latchkey_domain::signed_note::NoteSigner::new(&next.name, &next.seed).unwrap().verifier();
    let cp = AuditCheckpoint::open(&note, &[old_key]).unwrap();
    AuditCheckpoint::open(&note, std::slice::from_ref(&new_key)).unwrap();
    assert!(cp.keys.contains(&new_key.to_vkey()), "the old key vouches for the new one");
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
    verify_audit_log(s).await;
}
