//! Conformance checks: enrollment keys, for machines that can never open a browser.

use super::*;

pub(super) fn key(
    id: &str,
    owner: &UserRecord,
    reusable: bool,
    expires_at: Timestamp,
    created_by: &str,
) -> NewEnrollmentKey {
    NewEnrollmentKey {
        id: id.to_string(),
        key_hash: h(&format!("enroll-{id}")),
        owner_id: owner.id.clone(),
        reusable,
        expires_at,
        tag: Some("ci".into()),
        created_by: created_by.to_string(),
    }
}

/// Enrolling device `dev-<tag>` with key `key_id`, minting refresh token `tag`.
pub(super) fn enroll(key_id: &str, tag: &str, cap: i64) -> Enroll {
    Enroll {
        key_hash: h(&format!("enroll-{key_id}")),
        device_id: format!("dev-{tag}"),
        name: "CI Runner".into(),
        device: DeviceRequest {
            slug: None,
            location: Some("Rack 4".into()),
            platform: "linux-aarch64".into(),
            client_version: "2.0.0".into(),
            public_jwk: Some(format!("{{\"kty\":\"OKP\",\"x\":\"{tag}\"}}")),
            jkt: Some(format!("jkt-{tag}")),
        },
        client_id: "cli".into(),
        scope: "openid".into(),
        mint: mint(tag),
        device_cap: cap,
    }
}

async fn listed(s: &dyn Store, id: &str) -> EnrollmentKeyRecord {
    s.enrollment_keys(None)
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.id == id)
        .unwrap_or_else(|| panic!("enrollment key {id} is not listed"))
}

/// What may change when an enrollment is refused: nothing.
async fn snapshot(s: &dyn Store, owner_id: &str) -> (Vec<String>, Vec<DeviceRecord>, Vec<EnrollmentKeyRecord>) {
    (kinds(s).await, s.devices(UserId(owner_id)).await.unwrap(), s.enrollment_keys(None).await.unwrap())
}

/// Keys are listed, used (once, or again when reusable), and revoked; using one
/// registers the device and starts its token family, bound to the device's key.
pub async fn enrollment_keys_lifecycle(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    let ops = s.create_user(new_user("ops", false), None, at(0)).await.unwrap();

    let k1 = key("k1", &user, false, at(DAY_MS), &user.id);
    s.create_enrollment_key(k1.clone(), at(1000)).await.unwrap();
    assert_last_event(s, &events::enrollment_key_created(&k1), at(1000)).await;
    let before = kinds(s).await;
    let r = s.create_enrollment_key(k1.clone(), at(1500)).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "a reused key ID must be a conflict, got {r:?}");
    assert_eq!(kinds(s).await, before, "a refused key records nothing");
    let mut k2 = key("k2", &ops, true, at(DAY_MS), "admin-cli");
    k2.tag = None;
    s.create_enrollment_key(k2.clone(), at(2000)).await.unwrap();

    let r1 = EnrollmentKeyRecord {
        id: "k1".into(),
        owner_id: user.id.clone(),
        owner_name: "dev".into(),
        reusable: false,
        expires_at: at(DAY_MS),
        tag: Some("ci".into()),
        created_by: user.id.clone(),
        created_at: at(1000),
        revoked_at: None,
        uses: 0,
    };
    let r2 = EnrollmentKeyRecord {
        id: "k2".into(),
        owner_id: ops.id.clone(),
        owner_name: "ops".into(),
        reusable: true,
        expires_at: at(DAY_MS),
        tag: None,
        created_by: "admin-cli".into(),
        created_at: at(2000),
        revoked_at: None,
        uses: 0,
    };
    assert_eq!(s.enrollment_keys(None).await.unwrap(), vec![r2.clone(), r1.clone()], "newest first");
    assert_eq!(s.enrollment_keys(Some(UserId(&user.id))).await.unwrap(), vec![r1.clone()]);
    assert_eq!(s.enrollment_keys(Some(UserId("u-nobody"))).await.unwrap(), vec![]);

    // Using k1 registers the device and starts its token family, bound to its key.
    let Enrolled::Tokens { subject, device } =
        s.enroll_device(enroll("k1", "e1", DEFAULT_DEVICE_CAP), at(3000)).await.unwrap()
    else {
        panic!("a fresh key did not enroll");
    };
    let want = DeviceRecord {
        id: "dev-e1".into(),
        owner_id: user.id.clone(),
        display_name: "CI Runner".into(),
        slug: "ci-runner".into(),
        location: Some("Rack 4".into()),
        platform: "linux-aarch64".into(),
        client_version: "2.0.0".into(),
        created_at: at(3000),
        last_seen_at: None,
        status: DeviceStatus::Active,
        revoked_at: None,
        public_jwk: Some("{\"kty\":\"OKP\",\"x\":\"e1\"}".into()),
        jkt: Some("jkt-e1".into()),
    };
    // Whether the returned record already shows the first use is not part of the contract.
    assert_eq!(DeviceRecord { last_seen_at: None, ..(*device).clone() }, want);
    let stored = s.device(DeviceId("dev-e1")).await.unwrap().unwrap();
    assert_eq!(DeviceRecord { last_seen_at: None, ..stored.clone() }, want);
    assert_eq!(stored.last_seen_at, Some(at(3000)));
    assert_eq!(
        subject,
        TokenSubject {
            user_id: user.id.clone(),
            username: "dev".into(),
            client_id: "cli".into(),
            scope: "openid".into(),
            family_id: "family-e1".into(),
            auth_time: at(3000),
            device_id: Some("dev-e1".into()),
            jkt: Some("jkt-e1".into()),
        }
    );
    assert_eq!(
        s.refresh_token(&refresh_hash("e1")).await.unwrap(),
        Some(RefreshTokenRecord {
            family_id: "family-e1".into(),
            client_id: "cli".into(),
            user_id: user.id.clone(),
            username: "dev".into(),
            scope: "openid".into(),
            created_at: at(3000),
            expires_at: at(30 * DAY_MS),
            rotated_at: None,
            family_revoked: false,
            device_id: Some("dev-e1".into()),
            jkt: Some("jkt-e1".into()),
        })
    );
    assert!(s.family_active(FamilyId("family-e1"), at(0)).await.unwrap());
    assert_last_events(
        s,
        &[events::device_registered(&want, "enrollment_key"), events::enrollment_key_used("k1", "dev-e1")],
        at(3000),
    )
    .await;
    assert_eq!(listed(s, "k1").await.uses, 1);
    assert_eq!(
        s.location_history(DeviceId("dev-e1")).await.unwrap(),
        vec![LocationChange { location: Some("Rack 4".into()), effective_at: at(3000) }]
    );

    // Single use: the second use is refused and changes nothing.
    let before = snapshot(s, &user.id).await;
    assert_eq!(
        s.enroll_device(enroll("k1", "e2", DEFAULT_DEVICE_CAP), at(4000)).await.unwrap(),
        Enrolled::Refused(EnrollError::Used)
    );
    assert_eq!(snapshot(s, &user.id).await, before);
    assert_eq!(s.refresh_token(&refresh_hash("e2")).await.unwrap(), None);

    // Reusable: works again and again, for its owner.
    for (tag, slug) in [("e3", "ci-runner"), ("e4", "ci-runner-2")] {
        let Enrolled::Tokens { subject, device } =
            s.enroll_device(enroll("k2", tag, DEFAULT_DEVICE_CAP), at(5000)).await.unwrap()
        else {
            panic!("a reusable key did not enroll {tag}");
        };
        assert_eq!((subject.user_id.as_str(), device.owner_id.as_str()), (ops.id.as_str(), ops.id.as_str()));
        assert_eq!(device.slug, slug);
    }
    assert_eq!(listed(s, "k2").await.uses, 2);
    assert_eq!(s.devices(UserId(&ops.id)).await.unwrap().len(), 2);

    // Revoking: only the owner (or an admin), only once; a revoked key is refused.
    assert!(!s
        .revoke_enrollment_key(EnrollmentKeyId("k2"), Some(UserId(&user.id)), Actor(&user.id), at(6000))
        .await
        .unwrap());
    assert!(!s.revoke_enrollment_key(EnrollmentKeyId("k-nope"), None, Actor("admin-cli"), at(6000)).await.unwrap());
    assert!(s
        .revoke_enrollment_key(EnrollmentKeyId("k2"), Some(UserId(&ops.id)), Actor(&ops.id), at(6000))
        .await
        .unwrap());
    assert_last_event(s, &events::enrollment_key_revoked(&ops.id, "k2"), at(6000)).await;
    assert!(!s.revoke_enrollment_key(EnrollmentKeyId("k2"), None, Actor("admin-cli"), at(6500)).await.unwrap());
    assert_eq!(listed(s, "k2").await, EnrollmentKeyRecord { revoked_at: Some(at(6000)), uses: 2, ..r2 });
    let before = snapshot(s, &ops.id).await;
    assert_eq!(
        s.enroll_device(enroll("k2", "e5", DEFAULT_DEVICE_CAP), at(7000)).await.unwrap(),
        Enrolled::Refused(EnrollError::Revoked)
    );
    assert_eq!(snapshot(s, &ops.id).await, before);
    assert!(s.revoke_enrollment_key(EnrollmentKeyId("k1"), None, Actor("admin-cli"), at(8000)).await.unwrap());
    assert_last_event(s, &events::enrollment_key_revoked("admin-cli", "k1"), at(8000)).await;
    assert_eq!(count_kind(s, AuditKind::EnrollmentKeyUsed).await, 3);
    verify_audit_log(s).await;
}

/// Unknown, expired keys, a full device cap and a taken slug are refused and change nothing.
pub async fn enrollment_refusals(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    assert_eq!(s.enroll_device(enroll("nope", "n", DEFAULT_DEVICE_CAP), at(1000)).await.unwrap(), Enrolled::Unknown);
    s.create_enrollment_key(key("exp", &user, true, at(5000), &user.id), at(0)).await.unwrap();
    s.create_enrollment_key(key("once", &user, false, at(DAY_MS), &user.id), at(0)).await.unwrap();
    s.create_enrollment_key(key("many", &user, true, at(DAY_MS), &user.id), at(0)).await.unwrap();

    let before = snapshot(s, &user.id).await;
    assert_eq!(
        s.enroll_device(enroll("exp", "x1", DEFAULT_DEVICE_CAP), at(5000)).await.unwrap(),
        Enrolled::Refused(EnrollError::Expired)
    );
    assert_eq!(snapshot(s, &user.id).await, before);
    assert!(matches!(
        s.enroll_device(enroll("exp", "x2", DEFAULT_DEVICE_CAP), at(4999)).await.unwrap(),
        Enrolled::Tokens { .. }
    ));

    // Cap 1, one active device: refused; a single-use key refused this way stays unused.
    let before = snapshot(s, &user.id).await;
    for k in ["once", "many"] {
        assert_eq!(s.enroll_device(enroll(k, "l", 1), at(6000)).await.unwrap(), Enrolled::DeviceLimit(1));
    }
    assert_eq!(snapshot(s, &user.id).await, before);
    assert_eq!(s.refresh_token(&refresh_hash("l")).await.unwrap(), None);
    assert!(!s.family_active(FamilyId("family-l"), at(0)).await.unwrap());
    assert!(matches!(s.enroll_device(enroll("once", "o", 2), at(7000)).await.unwrap(), Enrolled::Tokens { .. }));

    // An explicit slug that is taken.
    let mut e = enroll("many", "s1", DEFAULT_DEVICE_CAP);
    e.device.slug = Some("runner".into());
    assert!(matches!(s.enroll_device(e, at(8000)).await.unwrap(), Enrolled::Tokens { .. }));
    let before = snapshot(s, &user.id).await;
    let mut e = enroll("many", "s2", DEFAULT_DEVICE_CAP);
    e.device.slug = Some("runner".into());
    assert_eq!(s.enroll_device(e, at(9000)).await.unwrap(), Enrolled::SlugTaken("runner".into()));
    assert_eq!(snapshot(s, &user.id).await, before);
    assert_eq!(s.device(DeviceId("dev-s2")).await.unwrap(), None);
    assert_eq!(count_kind(s, AuditKind::EnrollmentKeyUsed).await, 3);
    verify_audit_log(s).await;
}

/// Eight machines race to use one single-use key: exactly one enrolls. Eight race
/// to use a reusable key with room for three more devices: exactly three enroll.
pub async fn enrollment_single_use_under_concurrency(store: Arc<dyn Store>) {
    let user = setup(&*store).await;
    store.create_enrollment_key(key("once", &user, false, at(DAY_MS), &user.id), at(0)).await.unwrap();
    store.create_enrollment_key(key("many", &user, true, at(DAY_MS), &user.id), at(0)).await.unwrap();
    let results = concurrently(8, |i| {
        let store = store.clone();
        async move {
            store
                .enroll_device(
                    enroll("once", &format!("o{i}"), DEFAULT_DEVICE_CAP),
                    at(1000),
                )
                .await
                .unwrap()
        }
    })
    .await;
    let winners: Vec<usize> = (0..8).filter(|&i| matches!(results[i], Enrolled::Tokens { .. })).collect();
    assert_eq!(winners.len(), 1, "exactly one use of a single-use key: {results:?}");
    assert!(
        results.iter().enumerate().all(|(i, r)| i == winners[0] || *r == Enrolled::Refused(EnrollError::Used)),
        "every other use hears the key was used: {results:?}"
    );
    for i in (0..8).filter(|&i| i != winners[0]) {
        assert_eq!(store.refresh_token(&refresh_hash(&format!("o{i}"))).await.unwrap(), None);
        assert_eq!(store.device(DeviceId(&format!("dev-o{i}"))).await.unwrap(), None);
    }
    assert_eq!(listed(&*store, "once").await.uses, 1);
    assert_eq!(store.devices(UserId(&user.id)).await.unwrap().len(), 1);

    let results = concurrently(8, |i| {
        let store = store.clone();
        async move { store.enroll_device(enroll("many", &format!("m{i}"), 4), at(2000)).await.unwrap() }
    })
    .await;
    let enrolled = results.iter().filter(|r| matches!(r, Enrolled::Tokens { .. })).count();
    let limited = results.iter().filter(|r| **r == Enrolled::DeviceLimit(4)).count();
    assert_eq!((enrolled, limited), (3, 5), "{results:?}");
    assert_eq!(listed(&*store, "many").await.uses, 3);
    let mut slugs: Vec<String> = store.devices(UserId(&user.id)).await.unwrap().into_iter().map(|d| d.slug).collect();
    slugs.sort();
    assert_eq!(slugs, ["ci-runner", "ci-runner-2", "ci-runner-3", "ci-runner-4"]);
    assert_eq!(count_kind(&*store, AuditKind::EnrollmentKeyUsed).await, 4);
    assert_eq!(count_kind(&*store, AuditKind::DeviceRegistered).await, 4);
    verify_audit_log(&*store).await;
}
