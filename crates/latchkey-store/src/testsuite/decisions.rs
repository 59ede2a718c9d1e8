//! Conformance checks: every backend makes the same decision in every redeem
//! and registration case the domain distinguishes, including concurrent
//! registrations that collide on a slug. The expected outcomes are written
//! out here once, so a backend that drifts from the rules fails by name.

use super::*;

/// What a redeem answered, without the parts that differ by design (IDs, times).
fn outcome(r: &Redeemed) -> String {
    match r {
        Redeemed::Tokens(s) => format!("tokens for {} bound to {:?}", s.username, s.jkt),
        Redeemed::Pending { .. } => "pending".into(),
        Redeemed::SlowDown { interval_secs } => format!("slow down to {interval_secs}s"),
        other => format!("{other:?}").to_lowercase(),
    }
}

async fn redeem_as(
    s: &dyn Store,
    tag: &str,
    client_id: &str,
    jkt: Option<&str>,
    mode: RedeemMode,
    now: Timestamp,
) -> String {
    let mut r = redeem(tag, client_id, mode, &format!("{tag}-{}", now.as_millis()));
    r.presented_jkt = jkt.map(str::to_string);
    outcome(&s.redeem_device_grant(r, now).await.unwrap())
}

/// Grant `tag`, bound to key `jkt` when given, decided as `decision` at 1 s (or left pending).
async fn grant_in_state(s: &dyn Store, user: &UserRecord, tag: &str, jkt: Option<&str>, decision_: Option<Decision>) {
    let mut g = new_grant(tag, at(0));
    g.device.jkt = jkt.map(str::to_string);
    g.device.public_jwk = jkt.map(|_| "{}".to_string());
    s.create_device_grant(g, at(0)).await.unwrap();
    if let Some(d) = decision_ {
        let r = s.decide_device_grant(decision(tag, user, d), at(1000)).await.unwrap();
        assert!(matches!(r, DecideResult::Decided(_)), "deciding {tag}: {r:?}");
    }
}

/// One row of the redeem table: grant tag, client, key presented, mode, time (ms), expected answer.
type RedeemCase = (&'static str, &'static str, Option<&'static str>, RedeemMode, i64, &'static str);

/// The whole redeem table: client binding, key binding, poll accounting,
/// every final state, and a device revoked between approval and collection.
pub async fn redeem_decisions(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    s.create_app(public_app("other", at(0)), None, at(0)).await.unwrap();
    grant_in_state(s, &user, "pending", None, None).await;
    grant_in_state(s, &user, "bound", Some("key-a"), Some(Decision::Approve)).await;
    grant_in_state(s, &user, "unbound", None, Some(Decision::Approve)).await;
    grant_in_state(s, &user, "denied", None, Some(Decision::Deny)).await;
    grant_in_state(s, &user, "late", None, Some(Decision::Approve)).await;
    grant_in_state(s, &user, "revoked", Some("key-r"), Some(Decision::Approve)).await;
    let revoked =
        s.revoke_device(DeviceId("dev-revoked"), Some(UserId(&user.id)), Actor(&user.id), at(1500)).await.unwrap();
    assert!(matches!(revoked, RevokeDevice::Revoked(_)), "{revoked:?}");

    use RedeemMode::{Poll, Wait};
    let cases: Vec<RedeemCase> = vec![
        ("never-issued", "cli", None, Poll, 2_000, "unknown"),
        ("pending", "other", None, Poll, 2_000, "unknown"),
        ("pending", "cli", None, Wait, 2_000, "pending"),
        // A wait is not a poll: the first poll after it is on time.
        ("pending", "cli", None, Poll, 2_100, "pending"),
        ("pending", "cli", None, Poll, 3_000, "slow down to 10s"),
        ("pending", "cli", None, Wait, 3_100, "pending"),
        ("pending", "cli", None, Poll, 13_000, "pending"),
        ("bound", "cli", None, Poll, 2_000, "wrongkey"),
        ("bound", "cli", Some("key-b"), Wait, 2_000, "wrongkey"),
        ("bound", "other", Some("key-a"), Poll, 2_000, "unknown"),
        ("bound", "cli", Some("key-a"), Wait, 2_000, "tokens for dev bound to Some(\"key-a\")"),
        ("bound", "cli", Some("key-a"), Poll, 2_100, "spent"),
        // RFC 9449 §5: a proof at the token request binds what it issues.
        ("unbound", "cli", Some("key-z"), Poll, 2_000, "tokens for dev bound to Some(\"key-z\")"),
        ("unbound", "cli", None, Wait, 2_100, "spent"),
        ("denied", "cli", None, Poll, 2_000, "denied"),
        ("denied", "cli", None, Wait, 2_100, "denied"),
        ("late", "cli", None, Poll, 600_000, "expired"),
        ("late", "cli", None, Wait, 700_000, "expired"),
        ("revoked", "cli", Some("key-r"), Poll, 2_000, "denied"),
        ("pending", "cli", None, Poll, 601_000, "expired"),
    ];
    let mut got = Vec::new();
    let mut want = Vec::new();
    for (tag, client, jkt, mode, ms, expected) in cases {
        let answer = redeem_as(s, tag, client, jkt, mode, at(ms)).await;
        got.push(format!("{tag} by {client} with {jkt:?} ({mode:?} at {ms}): {answer}"));
        want.push(format!("{tag} by {client} with {jkt:?} ({mode:?} at {ms}): {expected}"));
    }
    assert_eq!(got, want);
    // Nothing but the two collections started a sign-in.
    assert_eq!(count_kind(s, AuditKind::GrantConsumed).await, 2);
    verify_audit_log(s).await;
}

/// Approves grant `tag` (a device named `name` asking for `slug` with key `jkt`) with cap `cap`.
async fn register(
    s: &dyn Store,
    user: &UserRecord,
    tag: &str,
    name: &str,
    slug: Option<&str>,
    jkt: Option<&str>,
    cap: i64,
) -> String {
    let mut g = new_grant(tag, at(0));
    g.requester.device_name = Some(name.to_string());
    g.device.slug = slug.map(str::to_string);
    g.device.jkt = jkt.map(str::to_string);
    s.create_device_grant(g, at(0)).await.unwrap();
    let mut d = decision(tag, user, Decision::Approve);
    d.device_cap = cap;
    match s.decide_device_grant(d, at(1000)).await.unwrap() {
        DecideResult::Decided(g) => {
            let id = g.device_id.unwrap_or_default();
            let device = s.device(DeviceId(&id)).await.unwrap().map(|d| d.slug).unwrap_or_default();
            format!("{id} as {device}")
        }
        other => format!("{other:?}"),
    }
}

/// The registration table: derived and explicit slugs, a revoked device's
/// slug kept forever, the same key reusing its device, and the cap.
pub async fn registration_decisions(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    let mut got = Vec::new();
    got.push(register(s, &user, "r1", "Work Laptop", None, Some("key-1"), 3).await);
    got.push(register(s, &user, "r2", "Work Laptop", None, None, 3).await);
    got.push(register(s, &user, "r3", "Anything", Some("work-laptop"), None, 3).await);
    // The same key is the same device: no new device, even at the cap.
    got.push(register(s, &user, "r4", "Renamed", None, Some("key-1"), 2).await);
    got.push(register(s, &user, "r5", "Desk", Some("desk"), None, 3).await);
    got.push(register(s, &user, "r6", "Desk", None, None, 2).await);
    s.revoke_device(DeviceId("dev-r5"), Some(UserId(&user.id)), Actor(&user.id), at(1500)).await.unwrap();
    // Revoked devices free their place under the cap but keep their slug.
    got.push(register(s, &user, "r7", "Other", Some("desk"), None, 3).await);
    got.push(register(s, &user, "r8", "Desk", None, None, 3).await);
    got.push(register(s, &user, "r9", "Spare", None, None, 3).await);
    assert_eq!(
        got,
        [
            "dev-r1 as work-laptop",
            "dev-r2 as work-laptop-2",
            "SlugTaken(\"work-laptop\")",
            "dev-r1 as work-laptop",
            "dev-r5 as desk",
            "DeviceLimit(2)",
            "SlugTaken(\"desk\")",
            "dev-r8 as desk-2",
            "DeviceLimit(3)",
        ]
    );
    verify_audit_log(s).await;
}

/// Six approvals at once asking for the same explicit slug: exactly one gets
/// it, five are refused and change nothing.
pub async fn concurrent_explicit_slug_collisions(store: Arc<dyn Store>) {
    let user = setup(&*store).await;
    for i in 0..6 {
        let mut g = new_grant(&format!("x{i}"), at(0));
        g.device.slug = Some("build-box".into());
        store.create_device_grant(g, at(0)).await.unwrap();
    }
    let results = concurrently(6, |i| {
        let (store, user) = (store.clone(), user.clone());
        async move { store.decide_device_grant(decision(&format!("x{i}"), &user, Decision::Approve), at(1000)).await }
    })
    .await;
    let results: Vec<DecideResult> = results.into_iter().map(|r| r.unwrap()).collect();
    let won = results.iter().filter(|r| matches!(r, DecideResult::Decided(_))).count();
    let refused = results.iter().filter(|r| **r == DecideResult::SlugTaken("build-box".into())).count();
    assert_eq!((won, refused), (1, 5), "{results:?}");
    let devices = store.devices(UserId(&user.id)).await.unwrap();
    assert_eq!(devices.iter().map(|d| d.slug.as_str()).collect::<Vec<_>>(), ["build-box"]);
    assert_eq!(count_kind(&*store, AuditKind::DeviceRegistered).await, 1);
    verify_audit_log(&*store).await;
}
