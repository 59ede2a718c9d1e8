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
    verify_audit_log(s).await;
}
