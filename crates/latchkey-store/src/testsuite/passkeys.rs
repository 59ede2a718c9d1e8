//! Passkeys: stored and listed, the last way in kept, the password given up
//! only for a passkey, sign-ins recorded with their method, and ceremonies
//! answered once and only while they live.

use super::*;
use latchkey_domain::account::AccountRefusal;
use latchkey_domain::passkey::{CeremonyKind, MethodRefusal};

fn passkey(tag: &str, user: &UserRecord) -> NewPasskey {
    NewPasskey {
        id: format!("pk-{tag}"),
        user_id: user.id.clone(),
        credential_id: format!("cred-{tag}"),
        passkey: format!("{{\"cred\":\"{tag}\"}}"),
        name: format!("key {tag}"),
    }
}

/// Adding, listing, removing and going passwordless, with each refusal the rules name.
pub async fn passkeys_and_the_last_way_in(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    let me = UserId(&user.id);
    assert_eq!(s.remove_password(me, None, at(1)).await.unwrap(), Err(MethodRefusal::NoPasskey.into()));
    s.add_passkey(passkey("a", &user), at(10)).await.unwrap().unwrap();
    let dup = NewPasskey { id: "pk-dup".into(), ..passkey("a", &user) };
    assert!(matches!(s.add_passkey(dup, at(11)).await, Err(StoreError::Conflict(_))));
    s.add_passkey(passkey("b", &user), at(20)).await.unwrap().unwrap();
    let listed: Vec<String> = s.passkeys(me).await.unwrap().into_iter().map(|p| p.id).collect();
    assert_eq!(listed, ["pk-a", "pk-b"]);
    let found = s.passkey_by_credential("cred-b").await.unwrap().unwrap();
    assert_eq!((found.user_id.as_str(), found.name.as_str(), found.created_at), (user.id.as_str(), "key b", at(20)));

    // Confirmed by a passkey that is not (or no longer) theirs: nothing changes.
    let gone = PasskeyUse { passkey_id: "pk-gone".into(), passkey: "{}".into() };
    assert_eq!(s.remove_password(me, Some(gone), at(29)).await.unwrap(), Err(PasskeyRefusal::Unknown));
    assert!(s.user_by_name("dev").await.unwrap().unwrap().has_password());
    // Confirmed by passkey b: the password goes and b's new state (its counter) is kept, together.
    let used = PasskeyUse { passkey_id: "pk-b".into(), passkey: "{\"counter\":7}".into() };
    s.remove_password(me, Some(used), at(30)).await.unwrap().unwrap();
    assert!(!s.user_by_name("dev").await.unwrap().unwrap().has_password());
    let b = s.passkey_by_credential("cred-b").await.unwrap().unwrap();
    assert_eq!((b.passkey.as_str(), b.last_used_at), ("{\"counter\":7}", Some(at(30))));
    assert_eq!(s.remove_password(me, None, at(31)).await.unwrap(), Err(MethodRefusal::NoPassword.into()));
    s.remove_passkey(me, "pk-a", at(40)).await.unwrap().unwrap();
    assert_eq!(s.remove_passkey(me, "pk-b", at(41)).await.unwrap(), Err(MethodRefusal::LastMethod.into()));
    let other = s.create_user(new_user("other", false), None, at(0)).await.unwrap();
    // Someone else's passkey is no passkey of theirs.
    assert_eq!(s.remove_passkey(UserId(&other.id), "pk-b", at(42)).await.unwrap(), Err(PasskeyRefusal::Unknown));
    assert_eq!(s.passkeys(me).await.unwrap().len(), 1);

    let kinds: Vec<String> = s.audit_entries(0, 100).await.unwrap().into_iter().map(|e| e.kind).collect();
    for k in [AuditKind::PasskeyAdded, AuditKind::PasskeyRemoved, AuditKind::PasswordRemoved] {
        assert!(kinds.iter().any(|x| x == k.as_str()), "{} recorded", k.as_str());
    }
}

/// A passkey sign-in stores the passkey's new state and opens a session that
/// says how it signed in; a removed passkey or a stopped account gets nothing.
pub async fn passkey_sign_in_is_recorded_with_its_method(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    s.add_passkey(passkey("a", &user), at(10)).await.unwrap().unwrap();
    let sign_in = |tag: &str, passkey_id: &str| PasskeySignIn {
        passkey_id: passkey_id.into(),
        passkey: "{\"cred\":\"a\",\"counter\":1}".into(),
        session: NewSession { amr: "hwk user".into(), ..new_session(tag, &user, at(DAY_MS)) },
    };
    let signed_in = s.sign_in_with_passkey(sign_in("p", "pk-a"), at(100)).await.unwrap().unwrap();
    assert_eq!(signed_in.id, user.id);
    let session = s.session(&h("session-p"), at(200)).await.unwrap().unwrap();
    assert_eq!(session.amr, "hwk user");
    let stored = s.passkey_by_credential("cred-a").await.unwrap().unwrap();
    assert_eq!((stored.passkey.as_str(), stored.last_used_at), ("{\"cred\":\"a\",\"counter\":1}", Some(at(100))));

    let unknown = s.sign_in_with_passkey(sign_in("x", "pk-none"), at(300)).await.unwrap();
    assert_eq!(unknown.map(|u| u.id), Err(PasskeyRefusal::Unknown));
    assert!(s.session(&h("session-x"), at(300)).await.unwrap().is_none());
    s.set_user_disabled(UserId(&user.id), true, Actor("admin"), at(400)).await.unwrap();
    let refused = s.sign_in_with_passkey(sign_in("d", "pk-a"), at(500)).await.unwrap();
    assert_eq!(refused.map(|u| u.id), Err(AccountRefusal::Disabled.into()));
    assert!(s.session(&h("session-d"), at(500)).await.unwrap().is_none());
}

/// A ceremony is taken once, only as its own kind, and not after it expires.
pub async fn ceremonies_answer_once(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    let new = |tag: &str, kind| NewCeremony {
        id_hash: h(&format!("ceremony-{tag}")),
        kind,
        state: format!("state-{tag}"),
        user_id: Some(user.id.clone()),
        expires_at: at(1000),
    };
    s.start_ceremony(new("a", CeremonyKind::Register), at(0)).await.unwrap();
    s.start_ceremony(new("b", CeremonyKind::SignIn), at(0)).await.unwrap();
    assert!(s.take_ceremony(&h("ceremony-a"), CeremonyKind::SignIn, at(1)).await.unwrap().is_none());
    let taken = s.take_ceremony(&h("ceremony-a"), CeremonyKind::Register, at(1)).await.unwrap().unwrap();
    assert_eq!((taken.state.as_str(), taken.user_id.as_deref()), ("state-a", Some(user.id.as_str())));
    assert!(s.take_ceremony(&h("ceremony-a"), CeremonyKind::Register, at(2)).await.unwrap().is_none());
    assert!(s.take_ceremony(&h("ceremony-b"), CeremonyKind::SignIn, at(1000)).await.unwrap().is_none());
}
