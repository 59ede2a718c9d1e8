//! Sign-ins that are not devices: listed for their user, ended one by one;
//! and a device code's tokens bound to the key of the proof that redeems it.

use super::*;

/// Sessions and device-less token families (QR sign-ins) are listed newest first
/// with where they started; device families, expired sessions and other users'
/// sign-ins are not. Ending one stops it at once and is recorded; a sign-in of
/// another user, a device's family, or one already ended is `None` and changes nothing.
pub async fn sign_ins_listed_and_ended(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    let other = s.create_user(new_user("other", false), None, at(0)).await.unwrap();
    s.create_session(new_session("a", &user, at(DAY_MS)), at(100)).await.unwrap();
    s.create_session(new_session("b", &user, at(DAY_MS)), at(200)).await.unwrap();
    s.create_session(new_session("o", &other, at(DAY_MS)), at(300)).await.unwrap();
    let (device, _) = tokens_for(s, &user, "laptop").await;
    s.create_pairing(new_pairing("qr", at(0)), at(0)).await.unwrap();
    s.decide_pairing(&h("phone-qr"), UserId(&user.id), true, at(1500)).await.unwrap();
    let qr_mint = MintRefresh { new_family_id: "family-qr".into(), refresh: None };
    assert!(matches!(s.collect_pairing(&h("desktop-qr"), qr_mint, at(2500)).await.unwrap(), Collected::Tokens(..)));

    let browser = |tag: &str, created: i64| SignInRecord {
        kind: SignInKind::Browser,
        id: format!("sid-{tag}"),
        client_id: None,
        app_name: None,
        ip: "192.0.2.4".into(),
        user_agent: "Mozilla/5.0 (phone)".into(),
        created_at: at(created),
    };
    let qr = SignInRecord {
        kind: SignInKind::App,
        id: "family-qr".into(),
        client_id: Some("cli".into()),
        app_name: Some("cli app".into()),
        ip: "203.0.113.9".into(),
        user_agent: "Mozilla/5.0 (desktop)".into(),
        created_at: at(2500),
    };
    let uid = user.id.clone();
    let listed = |since: i64, now: i64| {
        let uid = uid.clone();
        async move { s.sign_ins(UserId(&uid), at(since), at(now)).await.unwrap() }
    };
    assert_eq!(listed(0, 3000).await, [qr.clone(), browser("b", 200), browser("a", 100)]);
    // Without a refresh token, a web sign-in is live only while its access tokens may be.
    assert_eq!(listed(2501, 3000).await, [browser("b", 200), browser("a", 100)]);
    assert_eq!(listed(0, DAY_MS).await, [qr], "sessions end at their expiry");

    let before = kinds(s).await;
    for (who, id) in [(&other, "family-qr"), (&other, "sid-a"), (&user, "sid-o"), (&user, device.family_id.as_str())] {
        assert_eq!(s.end_sign_in(UserId(&who.id), id, Actor(&who.id), at(4000)).await.unwrap(), None, "{id}");
    }
    assert_eq!(kinds(s).await, before, "refusals record nothing");
    assert!(s.family_active(FamilyId(&device.family_id), at(4000)).await.unwrap(), "a device is not ended here");
    assert!(s.session(&h("session-o"), at(4000)).await.unwrap().is_some());

    let ended = s.end_sign_in(UserId(&user.id), "family-qr", Actor(&user.id), at(5000)).await.unwrap();
    assert_eq!(ended, Some(SignInKind::App));
    assert_last_event(s, &events::sign_in_ended(&user.id, "family-qr", "cli", &user.id), at(5000)).await;
    assert!(!s.family_active(FamilyId("family-qr"), at(5000)).await.unwrap(), "its tokens stop at once");
    let ended = s.end_sign_in(UserId(&user.id), "sid-a", Actor(&user.id), at(6000)).await.unwrap();
    assert_eq!(ended, Some(SignInKind::Browser));
    assert_last_event(s, &events::session_ended(&user.id, "sid-a", &user.id), at(6000)).await;
    assert_eq!(s.session(&h("session-a"), at(6000)).await.unwrap(), None);
    assert_eq!(s.end_sign_in(UserId(&user.id), "sid-a", Actor(&user.id), at(7000)).await.unwrap(), None);
    assert_eq!(listed(0, 7000).await, [browser("b", 200)]);
    verify_audit_log(s).await;
}

/// A grant that was not bound to a device key, redeemed with a DPoP proof, gets
/// tokens bound to that proof's key (RFC 9449 §5), never bearer tokens: its
/// refresh token then needs the key.
pub async fn unbound_grant_is_bound_to_the_presented_key(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    s.create_device_grant(new_grant("u", at(0)), at(0)).await.unwrap();
    s.decide_device_grant(decision("u", &user, Decision::Approve), at(1000)).await.unwrap();
    let mut r = redeem("u", "cli", RedeemMode::Poll, "u");
    r.presented_jkt = Some("jkt-p".into());
    let Redeemed::Tokens(subject) = s.redeem_device_grant(r, at(2000)).await.unwrap() else {
        panic!("an approved grant redeemed with a proof gave no tokens");
    };
    assert_eq!(subject.jkt.as_deref(), Some("jkt-p"), "the tokens are bound to the proof's key");
    let t = s.refresh_token(&refresh_hash("u")).await.unwrap().unwrap();
    assert_eq!(t.jkt.as_deref(), Some("jkt-p"));
    let rotate = |jkt: Option<&str>, tag: &str| RotateRefresh {
        token_hash: refresh_hash("u"),
        client_id: "cli".into(),
        replacement: replacement(tag),
        presented_jkt: jkt.map(str::to_string),
    };
    for jkt in [None, Some("jkt-x")] {
        assert_eq!(s.rotate_refresh_token(rotate(jkt, "x"), at(3000)).await.unwrap(), Rotated::WrongKey);
    }
    assert!(matches!(s.rotate_refresh_token(rotate(Some("jkt-p"), "u2"), at(3000)).await.unwrap(), Rotated::Tokens(_)));
}
