//! Conformance checks: devices registered by approval, their slugs, cap, names,
//! locations, revocation, and the DPoP key binding of grants and token families.

use super::*;
use latchkey_domain::slug::Slug;

/// A public key as a device would send it (contents do not matter to the store).
const JWK: &str = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;

/// Grant `tag` from a device calling itself `name` and asking to be registered as `device`.
async fn request(
    s: &dyn Store,
    tag: &str,
    name: Option<&str>,
    device: DeviceRequest,
    now: Timestamp,
) -> NewDeviceGrant {
    let mut g = new_grant(tag, now);
    g.requester.device_name = name.map(str::to_string);
    g.device = device;
    s.create_device_grant(g.clone(), now).await.unwrap();
    g
}

fn asks(slug: Option<&str>, jkt: Option<&str>) -> DeviceRequest {
    DeviceRequest {
        slug: slug.map(str::to_string),
        location: Some("Home office".into()),
        platform: "linux-x86_64".into(),
        client_version: "1.0.0".into(),
        public_jwk: jkt.map(|_| JWK.to_string()),
        jkt: jkt.map(str::to_string),
    }
}

async fn approve(s: &dyn Store, user: &UserRecord, tag: &str, cap: i64, now: Timestamp) -> DecideResult {
    let mut d = decision(tag, user, Decision::Approve);
    d.device_cap = cap;
    s.decide_device_grant(d, now).await.unwrap()
}

/// Approves grant `tag` and returns the device it registered.
async fn approved_device(s: &dyn Store, user: &UserRecord, tag: &str, now: Timestamp) -> DeviceRecord {
    match approve(s, user, tag, DEFAULT_DEVICE_CAP, now).await {
        DecideResult::Decided(g) => {
            assert_eq!(g.device_id.as_deref(), Some(format!("dev-{tag}").as_str()));
            assert_eq!(g.state.status, GrantStatus::Approved);
            device(s, &format!("dev-{tag}")).await
        }
        other => panic!("approving {tag} gave {other:?}"),
    }
}

async fn device(s: &dyn Store, id: &str) -> DeviceRecord {
    s.device(DeviceId(id)).await.unwrap().unwrap_or_else(|| panic!("device {id} is missing"))
}

async fn slugs(s: &dyn Store, owner_id: &str) -> Vec<String> {
    s.devices(UserId(owner_id)).await.unwrap().into_iter().map(|d| d.slug).collect()
}

fn rotate_with(token: &SecretHash, tag: &str, jkt: Option<&str>) -> RotateRefresh {
    RotateRefresh {
        token_hash: token.clone(),
        client_id: "cli".into(),
        replacement: replacement(tag),
        presented_jkt: jkt.map(str::to_string),
    }
}

/// Approval registers a device with a slug derived from its name, unique per owner.
pub async fn device_registered_on_approval(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    let ops = s.create_user(new_user("ops", false), None, at(0)).await.unwrap();

    request(s, "a", Some("My Laptop"), asks(None, None), at(0)).await;
    let d = approved_device(s, &user, "a", at(1000)).await;
    let want = DeviceRecord {
        id: "dev-a".into(),
        owner_id: user.id.clone(),
        display_name: "My Laptop".into(),
        slug: "my-laptop".into(),
        location: Some("Home office".into()),
        platform: "linux-x86_64".into(),
        client_version: "1.0.0".into(),
        created_at: at(1000),
        last_seen_at: None,
        status: DeviceStatus::Active,
        revoked_at: None,
        public_jwk: None,
        jkt: None,
    };
    assert_eq!(d, want);
    // Registered, then the request recorded with its decision, in one transaction.
    assert_last_events(
        s,
        &[
            events::device_registered(&want, "device_login"),
            events::grant_requested(&grant(s, "a").await),
            events::grant_decided(&decision("a", &user, Decision::Approve), "grant-a"),
        ],
        at(1000),
    )
    .await;
    assert_eq!(
        s.location_history(DeviceId("dev-a")).await.unwrap(),
        vec![LocationChange { location: Some("Home office".into()), effective_at: at(1000) }]
    );
    assert_eq!(grant(s, "a").await.device_id.as_deref(), Some("dev-a"));

    // Collisions within one owner get numeric suffixes.
    for (tag, t, want) in [("b", 2000, "my-laptop-2"), ("c", 3000, "my-laptop-3")] {
        request(s, tag, Some("My Laptop"), asks(None, None), at(0)).await;
        assert_eq!(approved_device(s, &user, tag, at(t)).await.slug, want);
    }
    // No name: "<client> device"; a name with nothing usable: a generated slug.
    request(s, "d", None, asks(None, None), at(0)).await;
    let d = approved_device(s, &user, "d", at(4000)).await;
    assert_eq!((d.display_name.as_str(), d.slug.as_str()), ("cli device", "cli-device"));
    request(s, "e", Some("!!!"), asks(None, None), at(0)).await;
    let d = approved_device(s, &user, "e", at(5000)).await;
    assert!(d.slug.starts_with("device-"), "{}", d.slug);
    assert!(Slug::parse(&d.slug).is_ok(), "{}", d.slug);
    // An explicit slug is used as given.
    request(s, "g", Some("My Laptop"), asks(Some("build-box"), None), at(0)).await;
    assert_eq!(approved_device(s, &user, "g", at(7000)).await.slug, "build-box");
    // Slugs are per owner.
    request(s, "f", Some("My Laptop"), asks(None, None), at(0)).await;
    let d = approved_device(s, &ops, "f", at(6000)).await;
    assert_eq!((d.owner_id.as_str(), d.slug.as_str()), (ops.id.as_str(), "my-laptop"));

    let ids: Vec<String> = s.devices(UserId(&user.id)).await.unwrap().into_iter().map(|d| d.id).collect();
    assert_eq!(ids, ["dev-g", "dev-e", "dev-d", "dev-c", "dev-b", "dev-a"], "newest first");
    assert_eq!(slugs(s, &ops.id).await, ["my-laptop"]);
    assert_eq!(s.devices(UserId("u-nobody")).await.unwrap(), vec![]);
    assert_eq!(s.device(DeviceId("dev-nope")).await.unwrap(), None);

    // Redeeming hands out tokens for the device and counts as the device being seen.
    let Redeemed::Tokens(subject) =
        s.redeem_device_grant(redeem("a", "cli", RedeemMode::Poll, "a"), at(8000)).await.unwrap()
    else {
        panic!("approved grant a did not redeem");
    };
    assert_eq!((subject.device_id.as_deref(), subject.jkt.as_deref()), (Some("dev-a"), None));
    let t = s.refresh_token(&refresh_hash("a")).await.unwrap().unwrap();
    assert_eq!(t.device_id.as_deref(), Some("dev-a"));
    assert_eq!(device(s, "dev-a").await.last_seen_at, Some(at(8000)));
    assert_eq!(count_kind(s, AuditKind::DeviceRegistered).await, 7);
    verify_audit_log(s).await;
}

/// Slugs stay right past the probed candidates: twelve devices of one name
/// (half of them revoked, which keep their slugs) get `laptop` to `laptop-12`,
/// and an explicit slug that any of them ever had is refused.
pub async fn device_slugs_beyond_the_probes(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    for i in 1..=12 {
        let tag = format!("l{i}");
        request(s, &tag, Some("Laptop"), asks(None, None), at(0)).await;
        let d = approved_device(s, &user, &tag, at(1000 + i)).await;
        let want = if i == 1 { "laptop".to_string() } else { format!("laptop-{i}") };
        assert_eq!(d.slug, want);
        if i % 2 == 0 {
            let revoked = s.revoke_device(DeviceId(&d.id), Some(UserId(&user.id)), Actor(&user.id), at(2000)).await;
            assert!(matches!(revoked.unwrap(), RevokeDevice::Revoked(_)));
        }
    }
    request(s, "x", Some("Laptop"), asks(Some("laptop-10"), None), at(0)).await;
    assert_eq!(approve(s, &user, "x", DEFAULT_DEVICE_CAP, at(3000)).await, DecideResult::SlugTaken("laptop-10".into()));
    request(s, "y", Some("Laptop"), asks(Some("laptop-13"), None), at(0)).await;
    assert_eq!(approved_device(s, &user, "y", at(3000)).await.slug, "laptop-13");
    request(s, "z", Some("Laptop"), asks(None, None), at(0)).await;
    assert_eq!(approved_device(s, &user, "z", at(3000)).await.slug, "laptop-14", "explicit slugs count too");
}

/// A taken explicit slug or a full device cap refuses the approval and changes
/// nothing: the grant stays pending, no device, no audit entry.
pub async fn device_refusals_change_nothing(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    request(s, "a", Some("Box"), asks(Some("box"), None), at(0)).await;
    approved_device(s, &user, "a", at(1000)).await;

    request(s, "b", Some("Other box"), asks(Some("box"), None), at(0)).await;
    let before = (kinds(s).await, s.devices(UserId(&user.id)).await.unwrap(), grant(s, "b").await);
    assert_eq!(approve(s, &user, "b", DEFAULT_DEVICE_CAP, at(2000)).await, DecideResult::SlugTaken("box".into()));
    let after = (kinds(s).await, s.devices(UserId(&user.id)).await.unwrap(), grant(s, "b").await);
    assert_eq!(after, before, "a taken slug changes nothing");
    assert_eq!(after.2.state.status, GrantStatus::Pending);
    assert_eq!(s.device(DeviceId("dev-b")).await.unwrap(), None);

    // A revoked device keeps its slug: a slug names one device, ever.
    assert!(matches!(
        s.revoke_device(DeviceId("dev-a"), Some(UserId(&user.id)), Actor(&user.id), at(2500)).await.unwrap(),
        RevokeDevice::Revoked(_)
    ));
    assert_eq!(approve(s, &user, "b", DEFAULT_DEVICE_CAP, at(3000)).await, DecideResult::SlugTaken("box".into()));
    // Denying needs no device, so the slug does not matter.
    let DecideResult::Decided(g) = s.decide_device_grant(decision("b", &user, Decision::Deny), at(3500)).await.unwrap()
    else {
        panic!("deny was refused");
    };
    assert_eq!((g.state.status, g.device_id), (GrantStatus::Denied, None));

    // The cap counts active devices only (dev-a is revoked).
    for (tag, t) in [("c", 4000), ("d", 5000)] {
        request(s, tag, Some("Laptop"), asks(None, None), at(0)).await;
        assert!(matches!(approve(s, &user, tag, 2, at(t)).await, DecideResult::Decided(_)));
    }
    request(s, "e", Some("Laptop"), asks(None, None), at(0)).await;
    let before = (kinds(s).await, s.devices(UserId(&user.id)).await.unwrap(), grant(s, "e").await);
    assert_eq!(approve(s, &user, "e", 2, at(6000)).await, DecideResult::DeviceLimit(2));
    let after = (kinds(s).await, s.devices(UserId(&user.id)).await.unwrap(), grant(s, "e").await);
    assert_eq!(after, before, "a full device cap changes nothing");
    assert_eq!(
        s.redeem_device_grant(redeem("e", "cli", RedeemMode::Wait, "e"), at(6500)).await.unwrap(),
        Redeemed::Pending { grant_id: "grant-e".into(), expires_at: at(600_000) },
        "the refused grant is still pending"
    );
    // Revoking one frees a place.
    s.revoke_device(DeviceId("dev-c"), None, Actor("admin-cli"), at(7000)).await.unwrap();
    let DecideResult::Decided(g) = approve(s, &user, "e", 2, at(8000)).await else {
        panic!("approval after revoking a device was refused");
    };
    assert_eq!(g.device_id.as_deref(), Some("dev-e"));
    assert_eq!(device(s, "dev-e").await.slug, "laptop-3");
    verify_audit_log(s).await;
}

/// Renaming keeps the slug; moving keeps the history; only the owner may do either.
pub async fn device_rename_and_relocate(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    let ops = s.create_user(new_user("ops", false), None, at(0)).await.unwrap();
    request(s, "a", Some("Laptop"), asks(None, None), at(0)).await;
    let original = approved_device(s, &user, "a", at(1000)).await;

    let mut renamed = original.clone();
    renamed.display_name = "Work Laptop".into();
    assert_eq!(
        s.rename_device(DeviceId("dev-a"), UserId(&user.id), "Work Laptop", at(2000)).await.unwrap(),
        Some(renamed.clone())
    );
    assert_eq!(device(s, "dev-a").await, renamed);
    assert_eq!(renamed.slug, "laptop", "renaming never changes the slug");
    assert_last_event(s, &events::device_renamed(&user.id, "dev-a", "Work Laptop"), at(2000)).await;

    let before = kinds(s).await;
    assert_eq!(s.rename_device(DeviceId("dev-a"), UserId(&ops.id), "Mine now", at(2500)).await.unwrap(), None);
    assert_eq!(s.rename_device(DeviceId("dev-nope"), UserId(&user.id), "X", at(2500)).await.unwrap(), None);
    assert_eq!(device(s, "dev-a").await, renamed);
    assert_eq!(kinds(s).await, before);

    let mut moved = renamed.clone();
    moved.location = Some("Berlin office".into());
    assert_eq!(
        s.relocate_device(DeviceId("dev-a"), UserId(&user.id), Some("Berlin office".into()), at(3000)).await.unwrap(),
        Some(moved.clone())
    );
    assert_eq!(device(s, "dev-a").await, moved);
    assert_last_event(s, &events::device_relocated(&user.id, "dev-a", Some("Berlin office")), at(3000)).await;
    let history = vec![
        LocationChange { location: Some("Home office".into()), effective_at: at(1000) },
        LocationChange { location: Some("Berlin office".into()), effective_at: at(3000) },
    ];
    assert_eq!(s.location_history(DeviceId("dev-a")).await.unwrap(), history);

    let before = kinds(s).await;
    assert_eq!(
        s.relocate_device(DeviceId("dev-a"), UserId(&ops.id), Some("Elsewhere".into()), at(3500)).await.unwrap(),
        None
    );
    assert_eq!(s.location_history(DeviceId("dev-a")).await.unwrap(), history);
    assert_eq!(kinds(s).await, before);

    // Deferring ("later") is a recorded move too.
    moved.location = None;
    assert_eq!(
        s.relocate_device(DeviceId("dev-a"), UserId(&user.id), None, at(4000)).await.unwrap(),
        Some(moved.clone())
    );
    assert_last_event(s, &events::device_relocated(&user.id, "dev-a", None), at(4000)).await;
    let h = s.location_history(DeviceId("dev-a")).await.unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(h[..2], history[..]);
    assert_eq!(h[2], LocationChange { location: None, effective_at: at(4000) });
    assert_eq!(s.location_history(DeviceId("dev-nope")).await.unwrap(), vec![]);
    verify_audit_log(s).await;
}

/// Revoking a device revokes its live token families with it, and no one else's.
pub async fn device_revoke_takes_its_tokens(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    let ops = s.create_user(new_user("ops", false), None, at(0)).await.unwrap();
    let (a, ta) = tokens_for(s, &user, "a").await;
    let (b, tb) = tokens_for(s, &user, "b").await;
    let (c, tc) = tokens_for(s, &user, "c").await;
    assert_eq!(a.device_id.as_deref(), Some("dev-a"));
    assert_eq!(b.device_id.as_deref(), Some("dev-b"));
    assert_eq!(device(s, "dev-a").await.last_seen_at, Some(at(2000)));

    // Rotating counts as the device being seen.
    assert!(matches!(
        s.rotate_refresh_token(rotate_with(&ta, "a2", None), at(3000)).await.unwrap(),
        Rotated::Tokens(_)
    ));
    let ta2 = refresh_hash("a2");
    assert_eq!(device(s, "dev-a").await.last_seen_at, Some(at(3000)));
    assert_eq!(device(s, "dev-b").await.last_seen_at, Some(at(2000)));

    let before = kinds(s).await;
    assert_eq!(
        s.revoke_device(DeviceId("dev-a"), Some(UserId(&ops.id)), Actor(&ops.id), at(3500)).await.unwrap(),
        RevokeDevice::NotFound,
        "another owner cannot revoke it"
    );
    assert_eq!(
        s.revoke_device(DeviceId("dev-nope"), None, Actor("admin-cli"), at(3500)).await.unwrap(),
        RevokeDevice::NotFound
    );
    assert_eq!(kinds(s).await, before);
    assert!(s.family_active(FamilyId(&a.family_id), at(0)).await.unwrap());
    assert_eq!(device(s, "dev-a").await.status, DeviceStatus::Active);

    let mut want = device(s, "dev-a").await;
    want.status = DeviceStatus::Revoked;
    want.revoked_at = Some(at(4000));
    assert_eq!(
        s.revoke_device(DeviceId("dev-a"), Some(UserId(&user.id)), Actor(&user.id), at(4000)).await.unwrap(),
        RevokeDevice::Revoked(Box::new(want.clone()))
    );
    assert_eq!(device(s, "dev-a").await, want);
    assert_last_event(s, &events::device_revoked(&user.id, "dev-a", 1), at(4000)).await;
    assert!(!s.family_active(FamilyId(&a.family_id), at(0)).await.unwrap());
    assert!(s.family_active(FamilyId(&b.family_id), at(0)).await.unwrap(), "other devices keep their tokens");
    assert!(s.family_active(FamilyId(&c.family_id), at(0)).await.unwrap(), "other devices keep their tokens");
    assert!(s.refresh_token(&ta2).await.unwrap().unwrap().family_revoked);
    assert_eq!(s.rotate_refresh_token(rotate_with(&ta2, "a3", None), at(4500)).await.unwrap(), Rotated::Invalid);
    assert!(matches!(
        s.rotate_refresh_token(rotate_with(&tb, "b2", None), at(4500)).await.unwrap(),
        Rotated::Tokens(_)
    ));

    let before = kinds(s).await;
    for owner in [Some(user.id.as_str()), None] {
        assert_eq!(
            s.revoke_device(DeviceId("dev-a"), owner.map(UserId), Actor("admin-cli"), at(5000)).await.unwrap(),
            RevokeDevice::AlreadyRevoked
        );
    }
    assert_eq!(kinds(s).await, before);

    // An admin may revoke anyone's device; families already dead are not counted again.
    assert!(s.revoke_refresh_family(&tc, AppId("cli"), at(5500)).await.unwrap());
    assert!(matches!(
        s.revoke_device(DeviceId("dev-c"), None, Actor("admin-cli"), at(6000)).await.unwrap(),
        RevokeDevice::Revoked(_)
    ));
    assert_last_event(s, &events::device_revoked("admin-cli", "dev-c", 0), at(6000)).await;
    assert!(matches!(
        s.revoke_device(DeviceId("dev-b"), None, Actor("admin-cli"), at(7000)).await.unwrap(),
        RevokeDevice::Revoked(_)
    ));
    assert_last_event(s, &events::device_revoked("admin-cli", "dev-b", 1), at(7000)).await;
    assert!(!s.family_active(FamilyId(&b.family_id), at(0)).await.unwrap());
    assert!(s.devices(UserId(&user.id)).await.unwrap().iter().all(|d| d.status == DeviceStatus::Revoked));
    assert_eq!(count_kind(s, AuditKind::DeviceRevoked).await, 3);
    verify_audit_log(s).await;
}

/// Eight approvals at once for one owner, devices all called the same, cap 5:
/// five devices with five different slugs, three refusals that changed nothing.
pub async fn device_registration_under_concurrency(store: Arc<dyn Store>) {
    let user = setup(&*store).await;
    for i in 0..8 {
        request(&*store, &format!("c{i}"), Some("Laptop"), asks(None, None), at(0)).await;
    }
    let results = concurrently(8, |i| {
        let store = store.clone();
        let user = user.clone();
        async move { approve(&*store, &user, &format!("c{i}"), 5, at(1000)).await }
    })
    .await;
    let decided = results.iter().filter(|r| matches!(r, DecideResult::Decided(_))).count();
    let limited = results.iter().filter(|r| **r == DecideResult::DeviceLimit(5)).count();
    assert_eq!((decided, limited), (5, 3), "{results:?}");
    let mut got = slugs(&*store, &user.id).await;
    got.sort();
    assert_eq!(got, ["laptop", "laptop-2", "laptop-3", "laptop-4", "laptop-5"]);
    for (i, r) in results.iter().enumerate() {
        let g = grant(&*store, &format!("c{i}")).await;
        match r {
            DecideResult::Decided(_) => assert_eq!(g.device_id, Some(format!("dev-c{i}"))),
            _ => assert_eq!((g.state.status, g.device_id), (GrantStatus::Pending, None)),
        }
    }
    assert_eq!(count_kind(&*store, AuditKind::DeviceRegistered).await, 5);
    assert_eq!(count_kind(&*store, AuditKind::GrantApproved).await, 5);
    verify_audit_log(&*store).await;
}

/// A grant bound to a device key hands out nothing without that key, and a
/// wrong or missing key changes nothing (not even the polling clock).
pub async fn redeem_requires_device_key(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    request(s, "k", Some("Laptop"), asks(None, Some("jkt-k")), at(0)).await;
    let with = |jkt: Option<&str>, mode| {
        let mut r = redeem("k", "cli", mode, "k");
        r.presented_jkt = jkt.map(str::to_string);
        r
    };
    let before = (kinds(s).await, grant(s, "k").await);
    for (jkt, mode) in [(None, RedeemMode::Poll), (Some("jkt-x"), RedeemMode::Poll), (None, RedeemMode::Wait)] {
        assert_eq!(s.redeem_device_grant(with(jkt, mode), at(1000)).await.unwrap(), Redeemed::WrongKey);
    }
    assert_eq!((kinds(s).await, grant(s, "k").await), before, "a wrong key changes nothing");
    assert!(matches!(
        s.redeem_device_grant(with(Some("jkt-k"), RedeemMode::Poll), at(1000)).await.unwrap(),
        Redeemed::Pending { .. }
    ));

    let d = approved_device(s, &user, "k", at(2000)).await;
    assert_eq!((d.jkt.as_deref(), d.public_jwk.as_deref()), (Some("jkt-k"), Some(JWK)));
    let before = (kinds(s).await, grant(s, "k").await);
    for jkt in [None, Some("jkt-x")] {
        for mode in [RedeemMode::Poll, RedeemMode::Wait] {
            assert_eq!(s.redeem_device_grant(with(jkt, mode), at(3000)).await.unwrap(), Redeemed::WrongKey);
        }
    }
    let after = (kinds(s).await, grant(s, "k").await);
    assert_eq!(after, before, "a wrong key changes nothing");
    assert_eq!(after.1.state.status, GrantStatus::Approved);
    assert_eq!(s.refresh_token(&refresh_hash("k")).await.unwrap(), None);

    let Redeemed::Tokens(subject) =
        s.redeem_device_grant(with(Some("jkt-k"), RedeemMode::Poll), at(4000)).await.unwrap()
    else {
        panic!("the right key did not redeem");
    };
    assert_eq!((subject.device_id.as_deref(), subject.jkt.as_deref()), (Some("dev-k"), Some("jkt-k")));
    let t = s.refresh_token(&refresh_hash("k")).await.unwrap().unwrap();
    assert_eq!((t.device_id.as_deref(), t.jkt.as_deref()), (Some("dev-k"), Some("jkt-k")));
    assert_eq!(count_kind(s, AuditKind::GrantConsumed).await, 1);
    verify_audit_log(s).await;
}

/// A token family bound to a device key rotates only with that key; a wrong or
/// missing key changes nothing, not even for a replayed token.
pub async fn rotate_requires_device_key(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    request(s, "r", Some("Laptop"), asks(None, Some("jkt-r")), at(0)).await;
    approved_device(s, &user, "r", at(1000)).await;
    let mut r = redeem("r", "cli", RedeemMode::Poll, "r");
    r.presented_jkt = Some("jkt-r".into());
    let Redeemed::Tokens(subject) = s.redeem_device_grant(r, at(2000)).await.unwrap() else {
        panic!("bound grant did not redeem");
    };
    let t1 = refresh_hash("r");

    let before = (kinds(s).await, s.refresh_token(&t1).await.unwrap(), device(s, "dev-r").await);
    for jkt in [None, Some("jkt-x")] {
        assert_eq!(s.rotate_refresh_token(rotate_with(&t1, "x", jkt), at(3000)).await.unwrap(), Rotated::WrongKey);
    }
    let after = (kinds(s).await, s.refresh_token(&t1).await.unwrap(), device(s, "dev-r").await);
    assert_eq!(after, before, "a wrong key changes nothing");
    assert_eq!(s.refresh_token(&refresh_hash("x")).await.unwrap(), None);

    assert_eq!(
        s.rotate_refresh_token(rotate_with(&t1, "r2", Some("jkt-r")), at(4000)).await.unwrap(),
        Rotated::Tokens(subject.clone()),
        "rotation carries the device and its key over"
    );
    assert_eq!(subject.jkt.as_deref(), Some("jkt-r"));
    let t2 = s.refresh_token(&refresh_hash("r2")).await.unwrap().unwrap();
    assert_eq!((t2.device_id.as_deref(), t2.jkt.as_deref()), (Some("dev-r"), Some("jkt-r")));
    assert_eq!(device(s, "dev-r").await.last_seen_at, Some(at(4000)));

    // Without the key a replayed token is refused outright and cannot kill the family.
    assert_eq!(s.rotate_refresh_token(rotate_with(&t1, "y", None), at(5000)).await.unwrap(), Rotated::WrongKey);
    assert!(s.family_active(FamilyId(&subject.family_id), at(0)).await.unwrap());
    // With the key, within seconds of its rotation, it is a device retrying after a lost
    // answer: a new pair, and the pair the lost answer carried (r2) stops working.
    assert_eq!(
        s.rotate_refresh_token(rotate_with(&t1, "y", Some("jkt-r")), at(5000)).await.unwrap(),
        Rotated::Tokens(subject.clone())
    );
    assert!(s.refresh_token(&refresh_hash("r2")).await.unwrap().unwrap().rotated_at.is_some());
    assert!(s.refresh_token(&refresh_hash("y")).await.unwrap().unwrap().rotated_at.is_none());
    // Later than the grace (counted from the first rotation, retries do not stretch it), it is a replay.
    assert_eq!(
        s.rotate_refresh_token(rotate_with(&t1, "z", Some("jkt-r")), at(4000 + 10_001)).await.unwrap(),
        Rotated::ReuseDetected
    );
    assert!(!s.family_active(FamilyId(&subject.family_id), at(0)).await.unwrap());
    verify_audit_log(s).await;
}

/// A machine logging in again with the same key is the same device: no second
/// registration, even at the cap. For another owner, or once revoked, it is a new one.
pub async fn device_same_key_is_same_device(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    let ops = s.create_user(new_user("ops", false), None, at(0)).await.unwrap();
    request(s, "a", Some("Laptop"), asks(None, Some("jkt-same")), at(0)).await;
    let a = approved_device(s, &user, "a", at(1000)).await;

    request(s, "b", Some("Laptop again"), asks(None, Some("jkt-same")), at(0)).await;
    let before = s.devices(UserId(&user.id)).await.unwrap();
    let DecideResult::Decided(g) = approve(s, &user, "b", 1, at(2000)).await else {
        panic!("the same device logging in again was refused");
    };
    assert_eq!(g.device_id.as_deref(), Some("dev-a"));
    assert_eq!(s.devices(UserId(&user.id)).await.unwrap(), before, "no second device");
    assert_eq!(count_kind(s, AuditKind::DeviceRegistered).await, 1);
    assert_last_event(s, &events::grant_decided(&decision("b", &user, Decision::Approve), "grant-b"), at(2000)).await;
    let mut r = redeem("b", "cli", RedeemMode::Poll, "b");
    r.presented_jkt = Some("jkt-same".into());
    let Redeemed::Tokens(subject) = s.redeem_device_grant(r, at(3000)).await.unwrap() else {
        panic!("grant b did not redeem");
    };
    assert_eq!((subject.device_id.as_deref(), subject.jkt.as_deref()), (Some("dev-a"), Some("jkt-same")));

    // Another owner's machine with that key is another device.
    request(s, "c", Some("Laptop"), asks(None, Some("jkt-same")), at(0)).await;
    let c = approved_device(s, &ops, "c", at(4000)).await;
    assert_eq!((c.owner_id.as_str(), c.slug.as_str()), (ops.id.as_str(), "laptop"));

    // Once revoked, the machine comes back as a new device.
    s.revoke_device(DeviceId("dev-a"), Some(UserId(&user.id)), Actor(&user.id), at(5000)).await.unwrap();
    assert!(!s.family_active(FamilyId(&subject.family_id), at(0)).await.unwrap());
    request(s, "d", Some("Laptop"), asks(None, Some("jkt-same")), at(0)).await;
    let d = approved_device(s, &user, "d", at(6000)).await;
    assert_eq!(d.slug, "laptop-2");
    assert_eq!(device(s, "dev-a").await.status, DeviceStatus::Revoked);
    assert_ne!(a.id, d.id);

    // Enrolling the same machine with a key: the same device again.
    s.create_enrollment_key(
        NewEnrollmentKey {
            id: "k".into(),
            key_hash: h("enroll-k"),
            owner_id: user.id.clone(),
            reusable: true,
            expires_at: at(DAY_MS),
            tag: None,
            created_by: user.id.clone(),
        },
        at(7000),
    )
    .await
    .unwrap();
    let e = Enroll {
        key_hash: h("enroll-k"),
        device_id: "dev-e".into(),
        name: "Laptop".into(),
        device: asks(None, Some("jkt-same")),
        client_id: "cli".into(),
        scope: "openid".into(),
        mint: mint("e"),
        device_cap: DEFAULT_DEVICE_CAP,
    };
    let Enrolled::Tokens { subject, device } = s.enroll_device(e, at(8000)).await.unwrap() else {
        panic!("enrolling a known machine was refused");
    };
    assert_eq!((device.id.as_str(), subject.device_id.as_deref()), ("dev-d", Some("dev-d")));
    assert_eq!(s.device(DeviceId("dev-e")).await.unwrap(), None);
    assert_eq!(count_kind(s, AuditKind::DeviceRegistered).await, 3);
    assert_last_event(s, &events::enrollment_key_used("k", "dev-d"), at(8000)).await;
    verify_audit_log(s).await;
}

/// The audit page by device (as actor, subject or a value in the detail) and by time,
/// and names looked up for IDs in one go (IDs naming nothing left out).
pub async fn audit_by_device_time_and_names(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    request(s, "a", Some("Build Server"), asks(None, None), at(0)).await;
    let a = approved_device(s, &user, "a", at(1000)).await;
    request(s, "b", Some("Laptop"), asks(None, None), at(2000)).await;
    let b = approved_device(s, &user, "b", at(3000)).await;
    let detail = format!("{{\"truster\":\"{}\"}}", a.id);
    s.append_audit(AuditEvent::new(AuditKind::TrustRemoved, Some(&user.id), Some(&b.id)).with_detail(detail), at(5000))
        .await
        .unwrap();
    let page = |device: Option<&str>, since: Option<i64>, until: Option<i64>| {
        let f = AuditFilter {
            device: device.map(str::to_string),
            since: since.map(at),
            until: until.map(at),
            limit: 100,
            ..AuditFilter::default()
        };
        async move { s.audit_page(f).await.unwrap().into_iter().map(|e| (e.kind, e.at)).collect::<Vec<_>>() }
    };
    let all = all_entries(s).await;
    let about = |id: &str| {
        all.iter()
            .rev()
            .filter(|e| {
                e.actor.as_deref() == Some(id)
                    || e.subject.as_deref() == Some(id)
                    || e.detail.contains(&format!("\"{id}\""))
            })
            .map(|e| (e.kind.clone(), e.at))
            .collect::<Vec<_>>()
    };
    let of_a = page(Some(&a.id), None, None).await;
    assert_eq!(of_a, about(&a.id));
    assert!(of_a.iter().any(|(k, _)| k == AuditKind::DeviceRegistered.as_str()));
    assert!(of_a.iter().any(|(k, _)| k == AuditKind::TrustRemoved.as_str()), "the truster in the detail counts");
    assert!(!page(Some(&b.id), None, None)
        .await
        .iter()
        .any(|(k, at_)| k == AuditKind::DeviceRegistered.as_str() && *at_ == at(1000)));
    assert_eq!(page(Some("dev-none"), None, None).await, vec![]);
    // Time: `since` inclusive, `until` exclusive.
    let window = page(None, Some(1000), Some(5000)).await;
    assert!(!window.is_empty());
    assert!(window.iter().all(|(_, t)| *t >= at(1000) && *t < at(5000)), "{window:?}");
    assert_eq!(window.len(), all.iter().filter(|e| e.at >= at(1000) && e.at < at(5000)).count());
    assert_eq!(page(None, Some(5000), None).await, vec![(AuditKind::TrustRemoved.as_str().to_string(), at(5000))]);
    assert_eq!(page(Some(&b.id), Some(5000), Some(5001)).await.len(), 1);

    let mut names = s.audit_names(vec![user.id.clone(), a.id.clone(), "cli".into(), "nobody".into()]).await.unwrap();
    names.sort_by(|x, y| x.id.cmp(&y.id));
    let got: Vec<(String, NameKind, String)> = names.into_iter().map(|n| (n.id, n.kind, n.name)).collect();
    let mut want = vec![
        (user.id.clone(), NameKind::User, user.username.clone()),
        (a.id.clone(), NameKind::Device, a.display_name.clone()),
        ("cli".to_string(), NameKind::App, "cli app".to_string()),
    ];
    want.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(got, want);
    assert_eq!(s.audit_names(vec![]).await.unwrap(), vec![]);
}
