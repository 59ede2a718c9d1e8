//! Multi-machine sync through the JSON API, as an app's devices use it: kinds,
//! batches answered capture by capture, pulls that converge and wake.

use crate::backend_tests;
use crate::support::*;
use latchkey_client::{Auth, Client};
use latchkey_proto::api::{Capture, IdentityField, KindDeclaration, PullResponse, SyncedEvent};
use latchkey_store::{Actor, UserId};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// A registered latchkey-cli device of the user signed in as `session`: a client holding its key, and its token.
async fn device(app: &TestApp, session: &str, name: &str) -> (Client, String) {
    let client = app.keyed_client();
    let auth = client.device_authorization(&cli(), "openid", Some(name)).await.expect("authorize");
    app.client.decide_device_login(session, &auth.user_code, true).await.expect("approve");
    let tokens = client.poll_token(&cli(), &auth.device_code).await.expect("tokens");
    (client, tokens.access_token)
}

fn declaration(fields: &[(&str, &str)], merge: &str, precision: &str) -> KindDeclaration {
    KindDeclaration {
        identity: fields.iter().map(|(n, t)| IdentityField { name: (*n).into(), ty: (*t).into() }).collect(),
        precision: precision.into(),
        merge: merge.into(),
        retention_days: None,
    }
}

async fn declare_kinds(c: &Client, token: &str) {
    let meeting = declaration(&[("title", "string"), ("starts", "timestamp")], "exact", "minute");
    c.declare_event_kind(Auth::Access(token), "meeting", &meeting).await.expect("meeting");
    let activity = declaration(&[("window", "string")], "interval", "second");
    c.declare_event_kind(Auth::Access(token), "activity", &activity).await.expect("activity");
}

fn capture(kind: &str, identity: serde_json::Value, interval: Option<(&str, &str)>) -> Capture {
    Capture {
        kind: kind.into(),
        identity: identity.as_object().cloned().unwrap_or_default(),
        start: interval.map(|(s, _)| s.into()),
        end: interval.map(|(_, e)| e.into()),
        id: None,
    }
}

fn meeting(title: &str, starts: &str) -> Capture {
    capture("meeting", json!({"title": title, "starts": starts}), None)
}

fn activity(window: &str, start: &str, end: &str) -> Capture {
    capture("activity", json!({"window": window}), Some((start, end)))
}

/// Pulls everything, page by page, and applies it: the live events by ID.
async fn view(c: &Client, token: &str) -> BTreeMap<String, SyncedEvent> {
    let mut live = BTreeMap::new();
    let mut cursor = 0;
    loop {
        let PullResponse { events, cursor: next } =
            c.pull_events(Auth::Access(token), cursor, 3, 0).await.expect("pull");
        if events.is_empty() {
            return live;
        }
        cursor = next;
        for e in events {
            if e.merged_into.is_some() {
                live.remove(&e.id);
            } else {
                live.insert(e.id.clone(), e);
            }
        }
    }
}

fn statuses(r: &latchkey_proto::api::IngestResponse) -> Vec<&str> {
    r.results.iter().map(|r| r.status.as_str()).collect()
}

async fn kinds_are_declared_once_by_an_apps_device(b: Backend) {
    let app = spawn_app(b).await;
    let session = app.signed_in("alice").await;
    let (laptop, token) = device(&app, &session, "laptop").await;
    let m = declaration(&[("title", "string"), ("starts", "timestamp")], "exact", "minute");
    let first = laptop.declare_event_kind(Auth::Access(&token), "meeting", &m).await.expect("declare");
    assert_eq!((first.name.as_str(), &first.declaration), ("meeting", &m));
    laptop.declare_event_kind(Auth::Access(&token), "meeting", &m).await.expect("again is safe");
    let kept = KindDeclaration { retention_days: Some(30), ..m.clone() };
    let k = laptop.declare_event_kind(Auth::Access(&token), "meeting", &kept).await.expect("retention may change");
    assert_eq!(k.declaration.retention_days, Some(30));
    let other = declaration(&[("title", "string")], "exact", "minute");
    let e = laptop.declare_event_kind(Auth::Access(&token), "meeting", &other).await.expect_err("identity is fixed");
    assert_eq!((e.status(), e.code()), (Some(409), Some("conflict")));
    for (name, d) in [
        ("Bad Name", m.clone()),
        ("k", declaration(&[("title", "text")], "exact", "second")),
        ("k", declaration(&[("title", "string")], "sometimes", "second")),
        ("k", declaration(&[("title", "string")], "exact", "fortnight")),
        ("k", declaration(&[], "exact", "second")),
    ] {
        let e = laptop.declare_event_kind(Auth::Access(&token), name, &d).await.expect_err("refused");
        assert_eq!((e.status(), e.code()), (Some(400), Some("invalid_request")), "{name}: {e}");
    }
    let e = app.client.declare_event_kind(&session, "meeting", &m).await.expect_err("a session is no app");
    assert_eq!(e.status(), Some(403));
    let listed = laptop.event_kinds(Auth::Access(&token)).await.expect("kinds");
    assert_eq!(listed.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["meeting"]);
}

/// Two devices capture the same meetings and overlapping activity, at once:
/// each meeting is stored once, with both devices as observers; activity
/// merges into the union; both devices pull the same view.
async fn two_devices_capturing_the_same_events_store_them_once(b: Backend) {
    let app = spawn_app(b).await;
    let session = app.signed_in("alice").await;
    let (desktop, dt) = device(&app, &session, "desktop").await;
    let (laptop, lt) = device(&app, &session, "laptop").await;
    declare_kinds(&desktop, &dt).await;
    let from_desktop = vec![
        meeting("Stand-up", "2026-11-30T09:00:00Z"),
        meeting("Review", "2026-11-30T14:00:00Z"),
        activity("editor", "2026-11-30T10:00:00Z", "2026-11-30T10:10:00Z"),
    ];
    let from_laptop = vec![
        // The same stand-up, seen from another time zone, seconds later.
        meeting("Stand-up", "2026-11-30T10:00:20+01:00"),
        meeting("Retro", "2026-11-30T16:00:00Z"),
        activity("editor", "2026-11-30T10:05:00Z", "2026-11-30T10:20:00Z"),
        activity("editor", "2026-11-30T11:00:00Z", "2026-11-30T11:05:00Z"),
    ];
    let (a, b2) = tokio::join!(
        desktop.push_events(Auth::Access(&dt), &from_desktop),
        laptop.push_events(Auth::Access(&lt), &from_laptop)
    );
    let (a, b2) = (a.expect("desktop push"), b2.expect("laptop push"));
    assert_eq!(a.results.len(), 3);
    assert_eq!(b2.results.len(), 4);
    assert_eq!(a.results[0].id, b2.results[0].id, "one stand-up, whoever saw it");
    // Sending both batches again changes nothing.
    let again = desktop.push_events(Auth::Access(&dt), &from_desktop).await.expect("again");
    assert_eq!(statuses(&again), ["duplicate", "duplicate", "duplicate"]);

    let (vd, vl) = (view(&desktop, &dt).await, view(&laptop, &lt).await);
    assert_eq!(vd, vl, "every device converges to the same view");
    let meetings: Vec<&SyncedEvent> = vd.values().filter(|e| e.kind == "meeting").collect();
    assert_eq!(meetings.len(), 3, "stand-up, review, retro: {meetings:?}");
    let standup = meetings.iter().find(|e| e.identity["title"] == "Stand-up").expect("stand-up");
    assert_eq!(standup.identity["starts"], "2026-11-30T09:00:00Z", "UTC at the kind's precision");
    assert_eq!(standup.observers.len(), 2, "both devices observed it");
    let mut editor: Vec<(String, String)> = vd
        .values()
        .filter(|e| e.kind == "activity")
        .map(|e| (e.start.clone().unwrap_or_default(), e.end.clone().unwrap_or_default()))
        .collect();
    editor.sort();
    assert_eq!(
        editor,
        [
            ("2026-11-30T10:00:00Z".to_string(), "2026-11-30T10:20:00Z".to_string()),
            ("2026-11-30T11:00:00Z".to_string(), "2026-11-30T11:05:00Z".to_string()),
        ],
        "overlapping captures merged into their union"
    );
    let merged = vd.values().find(|e| e.start.as_deref() == Some("2026-11-30T10:00:00Z")).expect("merged");
    assert_eq!(merged.parts.len(), 2, "which device captured which part: {:?}", merged.parts);
}

/// Each bad capture is refused with its reason; the good ones in the same batch land.
async fn bad_captures_are_refused_one_by_one(b: Backend) {
    let app = spawn_app(b).await;
    let session = app.signed_in("alice").await;
    let (laptop, t) = device(&app, &session, "laptop").await;
    declare_kinds(&laptop, &t).await;
    let mut foreign = meeting("Stand-up", "2026-11-30T09:00:00Z");
    foreign.identity.insert("user".into(), json!("someone-else"));
    let batch = vec![
        meeting("Stand-up", "2026-11-30T09:00:00Z"),
        capture("nope", json!({"x": 1}), None),
        capture("meeting", json!({"title": "No start"}), None),
        meeting("Bad time", "yesterday"),
        activity("editor", "2026-11-30T10:00:00Z", "2026-11-30T09:00:00Z"),
        meeting(&"x".repeat(5000), "2026-11-30T09:00:00Z"),
        foreign,
        capture("meeting", json!({"title": "Interval?", "starts": "2026-11-30T09:00:00Z"}), Some(("a", "b"))),
        meeting("Review", "2026-11-30T14:00:00Z"),
    ];
    let r = laptop.push_events(Auth::Access(&t), &batch).await.expect("push");
    let got: Vec<(&str, &str)> =
        r.results.iter().map(|r| (r.status.as_str(), r.reason.as_deref().unwrap_or(""))).collect();
    let want_reason = [
        "",
        "unknown kind",
        "missing",
        "RFC 3339",
        "ends before it starts",
        "larger than",
        "not an identity field",
        "exact",
        "",
    ];
    assert_eq!(got.len(), want_reason.len());
    for ((status, reason), want) in got.iter().zip(want_reason) {
        if want.is_empty() {
            assert_eq!(*status, "created", "{got:?}");
        } else {
            assert_eq!(*status, "rejected", "{got:?}");
            assert!(reason.contains(want), "{reason:?} should say {want:?}");
        }
    }
    assert_eq!(view(&laptop, &t).await.len(), 2, "the two good ones landed");

    let too_many = vec![meeting("x", "2026-11-30T09:00:00Z"); 1001];
    let e = laptop.push_events(Auth::Access(&t), &too_many).await.expect_err("too many");
    assert_eq!(e.status(), Some(413));
    let e = app.client.push_events(&session, &batch[..1]).await.expect_err("a session is no device");
    assert_eq!(e.status(), Some(403));
    let e = app.client.pull_events(Auth::Access(&t), 0, 10, 0).await.expect_err("without the key");
    assert_eq!(e.status(), Some(401));
    let e = laptop.pull_events(Auth::Access(&t), -1, 10, 0).await.expect_err("negative cursor");
    assert_eq!(e.status(), Some(400));

    // A disabled account's device sends nothing.
    let alice = app.store.user_by_name("alice").await.expect("load").expect("alice").id;
    app.store.set_user_disabled(UserId(&alice), true, Actor("admin-cli"), now()).await.expect("disable");
    let e = laptop.push_events(Auth::Access(&t), &batch[..1]).await.expect_err("disabled");
    assert_eq!(e.status(), Some(401));
}

/// A device waiting on a pull wakes as soon as another device adds an event.
async fn a_waiting_pull_wakes_when_another_device_adds(b: Backend) {
    let app = spawn_app(b).await;
    let session = app.signed_in("alice").await;
    let (desktop, dt) = device(&app, &session, "desktop").await;
    let (laptop, lt) = device(&app, &session, "laptop").await;
    declare_kinds(&desktop, &dt).await;
    let started = std::time::Instant::now();
    let waiter = tokio::spawn(async move { laptop.pull_events(Auth::Access(&lt), 0, 100, 20).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    desktop.push_events(Auth::Access(&dt), &[meeting("Stand-up", "2026-11-30T09:00:00Z")]).await.expect("push");
    let pulled =
        tokio::time::timeout(Duration::from_secs(15), waiter).await.expect("woken").expect("task").expect("pull");
    assert_eq!(pulled.events.len(), 1);
    assert!(started.elapsed() < Duration::from_secs(15), "woken by the push, not by the timeout");
    // Nothing new: a short wait answers empty, with the same cursor.
    let again = desktop.pull_events(Auth::Access(&dt), pulled.cursor, 100, 1).await.expect("pull");
    assert_eq!((again.events.len(), again.cursor), (0, pulled.cursor));
}

/// A small deterministic shuffle (Fisher–Yates over an LCG), so a failure can be replayed from its seed.
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    for i in (1..items.len()).rev() {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        items.swap(i, ((x >> 33) % (i as u64 + 1)) as usize);
    }
}

/// Three devices send overlapping captures (meetings and activity) in their own
/// random orders and batch sizes, all at once: no event is stored twice, and
/// every device pulls the same view.
async fn three_devices_in_random_orders_converge(b: Backend) {
    let app = spawn_app(b).await;
    let session = app.signed_in("alice").await;
    let mut devices = Vec::new();
    for name in ["desktop", "laptop", "phone"] {
        devices.push(device(&app, &session, name).await);
    }
    declare_kinds(&devices[0].0, &devices[0].1).await;
    for seed in 1..=3u64 {
        // Everything that happened: 20 meetings and 30 activity intervals; each device saw most of it.
        let mut world = Vec::new();
        for i in 0..20 {
            world.push(meeting(&format!("Meeting {seed}-{i}"), &format!("2026-12-{:02}T09:00:00Z", i + 1)));
        }
        for i in 0..30u64 {
            let start = (i * 7 + seed * 3) % 120;
            let end = start + (i % 5) * 2;
            let at = |m: u64| format!("2026-11-{:02}T{:02}:{:02}:00Z", seed + 1, 10 + m / 60, m % 60);
            world.push(activity(if i % 2 == 0 { "editor" } else { "browser" }, &at(start), &at(end)));
        }
        let sends = devices.iter().enumerate().map(|(d, (client, token))| {
            let mut mine: Vec<Capture> =
                world.iter().enumerate().filter(|(i, _)| (i + d) % 4 != 0).map(|(_, c)| c.clone()).collect();
            shuffle(&mut mine, seed * 10 + d as u64);
            let size = 1 + (seed as usize + d) % 7;
            async move {
                for chunk in mine.chunks(size) {
                    let r = client.push_events(Auth::Access(token), chunk).await.expect("push");
                    assert!(r.results.iter().all(|r| r.status != "rejected"), "{r:?}");
                }
            }
        });
        futures::future::join_all(sends).await;
        let mut views = Vec::new();
        for (client, token) in &devices {
            views.push(view(client, token).await);
        }
        assert!(views.windows(2).all(|w| w[0] == w[1]), "seed {seed}: the devices' views differ");
        let v = &views[0];
        let titles: Vec<&serde_json::Value> =
            v.values().filter(|e| e.kind == "meeting").map(|e| &e.identity["title"]).collect();
        let unique: std::collections::BTreeSet<String> = titles.iter().map(|t| t.to_string()).collect();
        assert_eq!(titles.len(), unique.len(), "seed {seed}: a meeting stored twice");
        for window in ["editor", "browser"] {
            let mut ivs: Vec<(String, String)> = v
                .values()
                .filter(|e| e.kind == "activity" && e.identity["window"] == window)
                .map(|e| (e.start.clone().unwrap_or_default(), e.end.clone().unwrap_or_default()))
                .collect();
            ivs.sort();
            assert!(ivs.windows(2).all(|w| w[0].1 < w[1].0), "seed {seed}: {window} events overlap: {ivs:?}");
        }
    }
}

backend_tests!(
    three_devices_in_random_orders_converge,
    kinds_are_declared_once_by_an_apps_device,
    two_devices_capturing_the_same_events_store_them_once,
    bad_captures_are_refused_one_by_one,
    a_waiting_pull_wakes_when_another_device_adds,
);
