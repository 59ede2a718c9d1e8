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
