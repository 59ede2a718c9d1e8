//! Conformance checks: refresh-token rotation, reuse detection and revocation.

use super::*;

/// Rotation keeps the family; a replayed token revokes it; after that nothing in it works.
pub async fn refresh_rotation_and_reuse(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    s.create_app(public_app("other", at(0)), None, at(0)).await.unwrap();
    let (subject, t1) = tokens_for(s, &user, "r").await;
    let rotate = |token: &SecretHash, client: &str, tag: &str, now| {
        s.rotate_refresh_token(
            RotateRefresh {
                token_hash: token.clone(),
                client_id: client.to_string(),
                replacement: replacement(tag),
                presented_jkt: None,
            },
            now,
        )
    };

    assert_eq!(
        rotate(&t1, "cli", "r2", at(30_000)).await.unwrap(),
        Rotated::Tokens(subject.clone()),
        "rotation carries the family and auth_time over"
    );
    let t2 = refresh_hash("r2");
    assert!(s.refresh_token(&t1).await.unwrap().unwrap().rotated_at.is_some());
    let r2 = s.refresh_token(&t2).await.unwrap().unwrap();
    assert_eq!((r2.family_id.as_str(), r2.created_at, r2.rotated_at), (subject.family_id.as_str(), at(30_000), None));
    assert!(!s.family_active(FamilyId("family-r2"), at(0)).await.unwrap());

    assert_eq!(rotate(&t2, "other", "x", at(31_000)).await.unwrap(), Rotated::Invalid);
    assert!(s.refresh_token(&t2).await.unwrap().unwrap().rotated_at.is_none());
    assert_eq!(rotate(&h("refresh-none"), "cli", "x", at(31_000)).await.unwrap(), Rotated::Invalid);
    assert!(matches!(rotate(&t2, "cli", "r3", at(40_000)).await.unwrap(), Rotated::Tokens(_)));
    let t3 = refresh_hash("r3");

    let replayed = s.refresh_token(&t1).await.unwrap().unwrap();
    assert_eq!(rotate(&t1, "cli", "x", at(50_000)).await.unwrap(), Rotated::ReuseDetected);
    assert_last_event(s, &events::refresh_reused(&replayed), at(50_000)).await;
    assert!(!s.family_active(FamilyId(&subject.family_id), at(0)).await.unwrap());
    assert_eq!(rotate(&t3, "cli", "x", at(51_000)).await.unwrap(), Rotated::Invalid);
    assert!(s.refresh_token(&t3).await.unwrap().unwrap().family_revoked);
    assert_eq!(rotate(&t1, "cli", "x", at(52_000)).await.unwrap(), Rotated::Invalid);
    assert_eq!(count_kind(s, AuditKind::RefreshReuseDetected).await, 1);

    // An expired token is refused, without revoking anything.
    let (other, e1) = tokens_for(s, &user, "exp").await;
    assert_eq!(rotate(&e1, "cli", "x", at(30 * DAY_MS)).await.unwrap(), Rotated::Invalid);
    assert!(s.family_active(FamilyId(&other.family_id), at(0)).await.unwrap());
    verify_audit_log(s).await;
}

/// Eight concurrent exchanges of one token: one rotates, one detects reuse, the rest are refused.
pub async fn refresh_concurrent_rotation(store: Arc<dyn Store>) {
    let user = setup(&*store).await;
    let (subject, t1) = tokens_for(&*store, &user, "c").await;
    let results = concurrently(8, |i| {
        let store = store.clone();
        let t1 = t1.clone();
        async move {
            store
                .rotate_refresh_token(
                    RotateRefresh {
                        token_hash: t1,
                        client_id: "cli".into(),
                        replacement: replacement(&format!("c{i}")),
                        presented_jkt: None,
                    },
                    at(10_000),
                )
                .await
                .unwrap()
        }
    })
    .await;
    let count = |want: fn(&Rotated) -> bool| results.iter().filter(|r| want(r)).count();
    assert_eq!(
        (
            count(|r| matches!(r, Rotated::Tokens(_))),
            count(|r| *r == Rotated::ReuseDetected),
            count(|r| *r == Rotated::Invalid)
        ),
        (1, 1, 6),
        "one rotation, one reuse, the rest refused: {results:?}"
    );
    assert!(!store.family_active(FamilyId(&subject.family_id), at(0)).await.unwrap());
    assert_eq!(count_kind(&*store, AuditKind::RefreshReuseDetected).await, 1);
    verify_audit_log(&*store).await;
}

/// Revocation needs the issuing client, happens once, and stops the family.
pub async fn revoke_refresh_family(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    let (subject, t1) = tokens_for(s, &user, "v").await;
    assert!(!s.revoke_refresh_family(&t1, AppId("other"), at(10_000)).await.unwrap());
    assert!(s.family_active(FamilyId(&subject.family_id), at(0)).await.unwrap());
    assert!(!s.revoke_refresh_family(&h("refresh-none"), AppId("cli"), at(10_000)).await.unwrap());
    let record = s.refresh_token(&t1).await.unwrap().unwrap();
    assert!(s.revoke_refresh_family(&t1, AppId("cli"), at(11_000)).await.unwrap());
    assert_last_event(s, &events::family_revoked(&record.family_id, &record.user_id, "cli"), at(11_000)).await;
    assert!(!s.family_active(FamilyId(&subject.family_id), at(0)).await.unwrap());
    assert!(!s.revoke_refresh_family(&t1, AppId("cli"), at(12_000)).await.unwrap());
    assert_eq!(count_kind(s, AuditKind::TokenFamilyRevoked).await, 1);
    assert!(s.refresh_token(&t1).await.unwrap().unwrap().family_revoked);
    assert_eq!(
        s.rotate_refresh_token(
            RotateRefresh {
                token_hash: t1,
                client_id: "cli".into(),
                replacement: replacement("v2"),
                presented_jkt: None
            },
            at(13_000),
        )
        .await
        .unwrap(),
        Rotated::Invalid
    );
    assert!(!s.family_active(FamilyId("no-such-family"), at(0)).await.unwrap());
    verify_audit_log(s).await;
}

/// A proof presented with a refresh token bound to no key is refused and
/// changes nothing; the same token then rotates without the proof.
pub async fn refresh_with_an_unneeded_proof_changes_nothing(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    let (_, token) = tokens_for(s, &user, "plain").await;
    let with_proof = RotateRefresh {
        token_hash: token.clone(),
        client_id: "cli".into(),
        replacement: replacement("plain-2"),
        presented_jkt: Some("some-key".into()),
    };
    assert_eq!(s.rotate_refresh_token(with_proof.clone(), at(3000)).await.unwrap(), Rotated::NotKeyBound);
    assert_eq!(s.refresh_token(&refresh_hash("plain-2")).await.unwrap(), None);
    let without = RotateRefresh { presented_jkt: None, ..with_proof };
    assert!(matches!(s.rotate_refresh_token(without, at(4000)).await.unwrap(), Rotated::Tokens(_)));
}
