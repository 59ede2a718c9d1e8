//! Conformance checks: the counts behind the activity charts.

use super::*;

/// Device sign-ins are counted per device and UTC day; device logins per outcome and
/// hour, an undecided login past its lifetime as expired; active devices and accounts.
pub async fn activity_counts(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    const HOUR: i64 = 3_600_000;
    let hour = |ms: i64| at(ms).as_millis().div_euclid(HOUR);
    // `a` approved and redeemed twice over (two devices' sign-ins), `b` denied,
    // `c` left undecided two hours ago (expired), `d` undecided just now (still waiting).
    tokens_for(s, &user, "a").await;
    tokens_for(s, &user, "e").await;
    s.create_device_grant(new_grant("b", at(0)), at(0)).await.unwrap();
    s.decide_device_grant(decision("b", &user, Decision::Deny), at(5_000)).await.unwrap();
    s.create_device_grant(new_grant("c", at(-2 * HOUR)), at(-2 * HOUR)).await.unwrap();
    s.create_device_grant(new_grant("d", at(30_000)), at(30_000)).await.unwrap();

    let o = s.login_overview(at(-10 * HOUR), at(10_000)).await.unwrap();
    let mut got: Vec<(LoginOutcome, i64, i64)> = o.hours.iter().map(|h| (h.outcome, h.hour, h.count)).collect();
    got.sort();
    let mut want = vec![
        (LoginOutcome::Started, hour(-2 * HOUR), 1),
        (LoginOutcome::Started, hour(0), 4),
        (LoginOutcome::Approved, hour(0), 2),
        (LoginOutcome::Denied, hour(0), 1),
        (LoginOutcome::Expired, hour(-2 * HOUR), 1),
    ];
    want.sort();
    assert_eq!(got, want, "per outcome and hour");
    assert_eq!((o.active_devices, o.active_users), (2, 1));
    let later = s.login_overview(at(-HOUR), at(10_000)).await.unwrap();
    assert!(later.hours.iter().all(|h| h.hour >= hour(-HOUR)), "nothing before `since`: {later:?}");

    let day = at(2000).as_millis().div_euclid(DAY_MS);
    let mut signs = s.device_sign_ins(UserId(&user.id), at(-DAY_MS)).await.unwrap();
    signs.sort_by(|x, y| x.device_id.cmp(&y.device_id));
    assert_eq!(
        signs,
        vec![
            DaySignIns { device_id: "dev-a".into(), day, count: 1 },
            DaySignIns { device_id: "dev-e".into(), day, count: 1 },
        ]
    );
    assert_eq!(s.device_sign_ins(UserId(&user.id), at(3000)).await.unwrap(), vec![], "none since");
    assert_eq!(s.device_sign_ins(UserId("someone-else"), at(-DAY_MS)).await.unwrap(), vec![], "only the user's");
}
