//! Conformance checks: users, sessions and apps.

use super::*;

/// Users: creation, lookup, count, and a taken name refused without side effects.
pub async fn users_create_and_conflict(store: Arc<dyn Store>) {
    let store = &*store;
    assert_eq!(store.count_users().await.unwrap(), 0);
    let alice = new_user("alice", true);
    let u = store.create_user(alice.clone(), None, at(0)).await.unwrap();
    assert_eq!(
        u,
        UserRecord {
            id: "u-alice".into(),
            username: "alice".into(),
            password_hash: alice.password_hash.clone(),
            is_admin: true,
            created_at: at(0),
            status: Default::default(),
        }
    );
    assert_last_event(store, &events::user_created(&alice, None), at(0)).await;
    assert_eq!(store.user_by_name("alice").await.unwrap(), Some(u.clone()));
    assert_eq!(store.user_by_name("Alice").await.unwrap(), None);
    assert_eq!(store.user_by_name("bob").await.unwrap(), None);

    let mut clash = new_user("alice", false);
    clash.id = "u-other".into();
    let r = store.create_user(clash, None, at(1)).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "a taken username must be a conflict, got {r:?}");
    assert_eq!(store.count_users().await.unwrap(), 1);
    assert_eq!(store.user_by_name("alice").await.unwrap(), Some(u));

    let bob = new_user("bob", false);
    store.create_user(bob.clone(), Some("u-alice".into()), at(2)).await.unwrap();
    assert_last_event(store, &events::user_created(&bob, Some("u-alice")), at(2)).await;
    assert_eq!(store.count_users().await.unwrap(), 2);
    assert_eq!(kinds(store).await, ["user.created", "user.created"]);
    verify_audit_log(store).await;
}

/// Sessions: live until `expires_at` (exclusive), ended by sign-out exactly once.
pub async fn sessions_lifecycle(store: Arc<dyn Store>) {
    let store = &*store;
    let user = setup(store).await;
    let token = h("session-1");
    let session = new_session("1", &user, at(3_600_000));
    let signin = session.audit.clone();
    store.create_session(session, at(100)).await.unwrap();
    assert_last_event(store, &signin, at(100)).await;
    let want = SessionRecord {
        id: "sid-1".into(),
        user: user.clone(),
        created_at: at(100),
        expires_at: at(3_600_000),
        amr: "pwd".into(),
    };
    assert_eq!(store.session(&token, at(200)).await.unwrap(), Some(want));
    assert_eq!(store.session(&token, at(3_600_000)).await.unwrap(), None, "a session is over at its expiry instant");
    assert_eq!(store.session(&h("session-x"), at(200)).await.unwrap(), None);

    assert!(store.delete_session(&token, at(300)).await.unwrap());
    assert_last_event(store, &events::signed_out(&user.id), at(300)).await;
    assert!(!store.delete_session(&token, at(400)).await.unwrap());
    assert_eq!(store.session(&token, at(500)).await.unwrap(), None);
    assert_eq!(count_kind(store, AuditKind::SignedOut).await, 1);
    verify_audit_log(store).await;
}

/// Apps: round trip of every field, byte-ordered listing, taken client ID refused.
pub async fn apps_create_list_conflict(store: Arc<dyn Store>) {
    let store = &*store;
    // Byte order puts "Zeta" before "alpha"; a locale collation would not.
    let alpha = public_app("alpha", at(0));
    let zeta = AppRecord {
        client_id: "Zeta".into(),
        display_name: "Zeta backend".into(),
        kind: ClientKind::Confidential,
        secret_hash: Some(h("client-secret")),
        grant_types: vec![GrantType::RefreshToken],
        redirect_uris: vec!["https://a.example/cb".into(), "https://b.example/cb?x=1".into()],
        app_url: None,
        qr_sign_in: false,
        require_dpop: false,
        created_at: at(5),
        post_logout_redirect_uris: Vec::new(),
        id_token_alg: Default::default(),
    };
    store.create_app(alpha.clone(), None, at(0)).await.unwrap();
    assert_last_event(store, &events::app_created(&alpha, None), at(0)).await;
    store.create_app(zeta.clone(), Some("u-admin".into()), at(5)).await.unwrap();
    assert_last_event(store, &events::app_created(&zeta, Some("u-admin")), at(5)).await;
    assert_eq!(store.app(AppId("alpha")).await.unwrap(), Some(alpha.clone()));
    assert_eq!(store.app(AppId("Zeta")).await.unwrap(), Some(zeta.clone()));
    assert_eq!(store.app(AppId("zeta")).await.unwrap(), None);
    assert_eq!(store.list_apps().await.unwrap(), vec![zeta.clone(), alpha.clone()]);

    let r = store.create_app(public_app("alpha", at(9)), None, at(9)).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "a taken client ID must be a conflict, got {r:?}");
    assert_eq!(store.list_apps().await.unwrap().len(), 2);
    assert_eq!(store.app(AppId("alpha")).await.unwrap(), Some(alpha));
    assert_eq!(kinds(store).await, ["app.created", "app.created"]);
    verify_audit_log(store).await;
}

/// Updating an app: its settings change, its ID, kind, secret, redirects and age do
/// not; `app.updated` records who and what; an unknown app is `None` and records nothing.
pub async fn app_update_persisted_and_audited(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    let web = AppRecord {
        client_id: "web".into(),
        display_name: "Web".into(),
        kind: ClientKind::Confidential,
        secret_hash: Some(h("web-secret")),
        grant_types: vec![GrantType::RefreshToken],
        redirect_uris: vec!["https://app.example.com/cb".into()],
        app_url: None,
        qr_sign_in: false,
        require_dpop: false,
        created_at: at(5),
        post_logout_redirect_uris: Vec::new(),
        id_token_alg: Default::default(),
    };
    s.create_app(web.clone(), Some(user.id.clone()), at(5)).await.unwrap();

    let on = AppUpdate {
        display_name: "Web (QR)".into(),
        grant_types: vec![GrantType::DeviceCode, GrantType::RefreshToken],
        app_url: Some("https://app.example.com/".into()),
        qr_sign_in: true,
        require_dpop: true,
        redirect_uris: vec!["https://app.example.com/cb".into(), "http://127.0.0.1:9/cb".into()],
        post_logout_redirect_uris: Vec::new(),
        id_token_alg: Default::default(),
    };
    let updated = AppRecord {
        redirect_uris: on.redirect_uris.clone(),
        display_name: on.display_name.clone(),
        grant_types: on.grant_types.clone(),
        app_url: on.app_url.clone(),
        qr_sign_in: true,
        require_dpop: true,
        ..web.clone()
    };
    assert_eq!(s.update_app(AppId("web"), on.clone(), Actor(&user.id), at(100)).await.unwrap(), Some(updated.clone()));
    assert_last_event(s, &events::app_updated("web", &on, &user.id), at(100)).await;
    assert_eq!(s.app(AppId("web")).await.unwrap(), Some(updated.clone()));
    let cli = s.app(AppId("cli")).await.unwrap();
    assert_eq!(s.list_apps().await.unwrap(), [cli.clone().unwrap(), updated], "only that app changes");

    // Switching QR sign-in off and clearing the URL persist too.
    let off = AppUpdate {
        display_name: "Web".into(),
        grant_types: vec![],
        app_url: None,
        qr_sign_in: false,
        require_dpop: false,
        redirect_uris: web.redirect_uris.clone(),
        post_logout_redirect_uris: Vec::new(),
        id_token_alg: Default::default(),
    };
    let cleared = AppRecord { grant_types: vec![], ..web.clone() };
    assert_eq!(
        s.update_app(AppId("web"), off.clone(), Actor("u-admin"), at(200)).await.unwrap(),
        Some(cleared.clone())
    );
    assert_last_event(s, &events::app_updated("web", &off, "u-admin"), at(200)).await;
    assert_eq!(s.app(AppId("web")).await.unwrap(), Some(cleared));

    let entries = all_entries(s).await.len();
    assert_eq!(s.update_app(AppId("nope"), on.clone(), Actor(&user.id), at(300)).await.unwrap(), None);
    assert_eq!(
        s.update_app(AppId("WEB"), on, Actor(&user.id), at(300)).await.unwrap(),
        None,
        "client IDs are case-sensitive"
    );
    assert_eq!(all_entries(s).await.len(), entries, "updating no app records nothing");
    assert_eq!(s.app(AppId("nope")).await.unwrap(), None);
    assert_eq!(s.app(AppId("cli")).await.unwrap(), cli);
    assert_eq!(count_kind(s, AuditKind::AppUpdated).await, 2);
    verify_audit_log(s).await;
}
