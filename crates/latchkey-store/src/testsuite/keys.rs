//! Conformance checks: signing keys.

use super::*;

/// Adding a key retires the active one (only it) and lists newest first.
pub async fn signing_keys_rotation(store: Arc<dyn Store>) {
    let s = &*store;
    assert_eq!(s.signing_keys().await.unwrap(), vec![]);
    let key = |kid: &str, n: u8, created| SigningKeyRecord {
        kid: kid.into(),
        private_pkcs8: vec![0x30, 0, n, 0xff, 0],
        public_key: vec![n; 32],
        created_at: created,
        retired_at: None,
        alg: IdTokenAlg::EdDSA,
    };
    s.add_signing_key(key("k1", 1, at(0)), None, at(0)).await.unwrap();
    assert_last_event(s, &events::key_rotated("k1", None), at(0)).await;
    assert_eq!(s.signing_keys().await.unwrap(), vec![key("k1", 1, at(0))]);
    s.add_signing_key(key("k2", 2, at(1000)), Some("u-admin".into()), at(1000)).await.unwrap();
    assert_last_event(s, &events::key_rotated("k2", Some("u-admin")), at(1000)).await;
    s.add_signing_key(key("k3", 3, at(2000)), None, at(2000)).await.unwrap();
    let retired = |mut k: SigningKeyRecord, when| {
        k.retired_at = Some(when);
        k
    };
    assert_eq!(
        s.signing_keys().await.unwrap(),
        vec![key("k3", 3, at(2000)), retired(key("k2", 2, at(1000)), at(2000)), retired(key("k1", 1, at(0)), at(1000)),]
    );
    // Each algorithm has its own active key: an RSA key retires only RSA keys.
    let rsa = |kid: &str, n: u8, created| SigningKeyRecord { alg: IdTokenAlg::RS256, ..key(kid, n, created) };
    s.add_signing_key(rsa("r1", 4, at(3000)), None, at(3000)).await.unwrap();
    s.add_signing_key(rsa("r2", 5, at(4000)), None, at(4000)).await.unwrap();
    let active: Vec<(String, IdTokenAlg)> = s
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.retired_at.is_none())
        .map(|k| (k.kid, k.alg))
        .collect();
    assert_eq!(active, vec![("r2".to_string(), IdTokenAlg::RS256), ("k3".to_string(), IdTokenAlg::EdDSA)]);
    verify_audit_log(s).await;
}

/// The fixed server secret key of the checks: every fixture unlocks its stores with it.
pub fn test_secret_key() -> latchkey_domain::at_rest::SecretKey {
    latchkey_domain::at_rest::SecretKey::from_bytes([0x5e; 32])
}

/// Unlocks a fresh check's store with [`test_secret_key`] (fixtures call this).
pub async fn unlock(store: &dyn Store) {
    let secured = store.secure_keys(test_secret_key(), at(0)).await.unwrap();
    assert_eq!(secured.key_id, test_secret_key().id());
}

/// The secret key: a wrong one is refused naming both key IDs and changes nothing;
/// rotating moves every key (signing and audit) under the new secret at once and
/// records it; after it the old key is the wrong one.
pub async fn secret_key_checked_and_rotated(store: Arc<dyn Store>) {
    let s = &*store;
    let first = test_secret_key();
    assert_eq!(s.sealed_under().await.unwrap(), Some(first.id()));
    assert_eq!(s.secure_keys(test_secret_key(), at(0)).await.unwrap().sealed_now, 0, "a second start seals nothing");
    let key = SigningKeyRecord {
        kid: "k1".into(),
        private_pkcs8: vec![0x30, 0x2e, 1, 2, 3],
        public_key: vec![9; 32],
        created_at: at(10),
        retired_at: None,
        alg: IdTokenAlg::EdDSA,
    };
    s.add_signing_key(key.clone(), None, at(10)).await.unwrap();
    s.add_audit_key(test_audit_key(), false, "system".into(), at(10)).await.unwrap();
    let audit_keys = s.audit_keys().await.unwrap();

    let wrong = latchkey_domain::at_rest::SecretKey::from_bytes([0x77; 32]);
    match s.secure_keys(wrong.clone(), at(20)).await {
        Err(StoreError::WrongSecretKey { expected, given }) => {
            assert_eq!((expected, given), (first.id(), wrong.id()));
        }
        other => panic!("a wrong secret key was not refused: {other:?}"),
    }
    assert_eq!(s.signing_keys().await.unwrap(), vec![key.clone()], "the store still holds the right key");

    let new = latchkey_domain::at_rest::SecretKey::from_bytes([0x42; 32]);
    assert_eq!(s.rotate_secret_key(new.clone(), "admin-cli".into(), at(30)).await.unwrap(), 2);
    assert_eq!(s.sealed_under().await.unwrap(), Some(new.id()));
    assert_eq!(s.secret_key().unwrap().id(), new.id());
    assert_eq!(s.signing_keys().await.unwrap(), vec![key]);
    assert_eq!(s.audit_keys().await.unwrap(), audit_keys);
    let rotated = AuditEvent::new(AuditKind::SecretKeyRotated, Some("admin-cli"), Some(&new.id()))
        .with_detail(serde_json::json!({ "keys": 2, "from": first.id() }).to_string());
    assert_last_event(s, &rotated, at(30)).await;
    match s.secure_keys(test_secret_key(), at(40)).await {
        Err(StoreError::WrongSecretKey { expected, given }) => assert_eq!((expected, given), (new.id(), first.id())),
        other => panic!("the rotated-away key was not refused: {other:?}"),
    }
    // Sealing still signs with the opened audit key.
    while s.seal_audit(at(50), 1000).await.unwrap().is_some() {}
    assert!(s.audit_tree().await.unwrap().checkpoint.is_some());
}
