//! Multi-machine sync: each logical event stored once, whatever order and
//! interleaving captures from several devices arrive in; the pulled stream
//! converges; kinds are declared once; retention and account deletion.

use super::*;
use latchkey_domain::events::{canonicalize, series_id, FieldSpec, FieldType, KindSpec, MergePolicy, Precision};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};

fn meeting() -> KindSpec {
    let f = |n: &str, ty| FieldSpec { name: n.into(), ty };
    KindSpec::new(
        "meeting",
        vec![f("title", FieldType::String), f("starts", FieldType::Timestamp)],
        Precision::Minute,
        MergePolicy::Exact,
    )
    .unwrap()
}

fn activity() -> KindSpec {
    let f = FieldSpec { name: "window".into(), ty: FieldType::String };
    KindSpec::new("activity", vec![f], Precision::Second, MergePolicy::Interval).unwrap()
}

fn kind_record(spec: KindSpec, retention_secs: Option<i64>) -> EventKindRecord {
    EventKindRecord { client_id: "cli".into(), spec, retention_secs, created_at: at(0) }
}

/// A capture as the server prepares it for `user`.
fn prepare(spec: &KindSpec, user: &str, identity: serde_json::Value, interval: Option<(i64, i64)>) -> PreparedCapture {
    let fmt = |ms: i64| latchkey_domain::events::format_time(Timestamp::from_millis(T0 + ms), Precision::Millisecond);
    let (s, e) = match interval {
        Some((s, e)) => (Some(fmt(s)), Some(fmt(e))),
        None => (None, None),
    };
    let c = canonicalize(spec, identity.as_object().unwrap(), s.as_deref(), e.as_deref()).unwrap();
    PreparedCapture {
        kind: spec.name.as_str().into(),
        series: series_id("cli", user, spec.name.as_str(), &c.identity),
        identity: c.identity.to_string(),
        interval: c.interval,
        precision: spec.precision,
        merge: spec.merge,
    }
}

fn batch(user: &UserRecord, device: &str, captures: Vec<PreparedCapture>) -> IngestBatch {
    IngestBatch { user_id: user.id.clone(), client_id: "cli".into(), device_id: device.into(), captures }
}

/// Everything a user's devices would see: pulled page by page, applied in
/// order (tombstones dropped), as (kind, identity, interval, observers, parts).
type View = BTreeMap<String, Seen>;
/// One event as a device sees it: kind, identity, interval, observers, parts.
type Seen = (String, String, Option<(i64, i64)>, BTreeSet<String>, BTreeSet<(String, i64, i64)>);

async fn pulled_view(s: &dyn Store, user: &UserRecord, page: i64) -> View {
    let mut view = View::new();
    let mut cursor = 0;
    loop {
        let p = s.pull_events(UserId(&user.id), AppId("cli"), cursor, page).await.unwrap();
        assert!(p.events.windows(2).all(|w| w[0].seq < w[1].seq), "stream order");
        if p.events.is_empty() {
            assert_eq!(p.cursor, cursor, "an empty page keeps the cursor");
            return view;
        }
        cursor = p.cursor;
        for e in p.events {
            if e.merged_into.is_some() {
                view.remove(&e.id);
                continue;
            }
            let observers = e.observers.iter().map(|o| o.device_id.clone()).collect();
            let parts = e
                .parts
                .iter()
                .map(|p| (p.device_id.clone(), p.interval.start.as_millis(), p.interval.end.as_millis()))
                .collect();
            let iv = e.interval.map(|i| (i.start.as_millis(), i.end.as_millis()));
            view.insert(e.id, (e.kind, e.identity, iv, observers, parts));
        }
    }
}

/// The same view with user-specific IDs replaced by what they stand for, to compare two users.
fn shape(v: &View) -> BTreeSet<Seen> {
    v.values().cloned().collect()
}

/// What three devices capture: the same meetings (each seen by one, two or three
/// devices) and overlapping activity intervals of two windows.
fn captures(user: &UserRecord, rng: &mut rand::rngs::SmallRng) -> Vec<(String, PreparedCapture)> {
    let (m, a) = (meeting(), activity());
    let mut out = Vec::new();
    for i in 0..12 {
        let identity =
            serde_json::json!({"title": format!("Stand-up {i}"), "starts": format!("2026-11-{:02}T09:00:00Z", i + 1)});
        for d in 0..3 {
            if d == 0 || rng.gen_bool(0.6) {
                out.push((format!("dev-{d}"), prepare(&m, &user.id, identity.clone(), None)));
            }
        }
    }
    for d in 0..3 {
        for _ in 0..8 {
            let window = if rng.gen_bool(0.5) { "editor" } else { "browser" };
            let start = rng.gen_range(0..600) * 1000;
            let len = rng.gen_range(0..60) * 1000;
            out.push((
                format!("dev-{d}"),
                prepare(&a, &user.id, serde_json::json!({"window": window}), Some((start, start + len))),
            ));
        }
    }
    out
}

/// Whatever the order and interleaving (shuffled, split into batches, sent by
/// three concurrent writers), the stored events are the same: none twice, every
/// observer kept, and a pulled stream that converges to them.
pub async fn events_are_stored_once_whatever_the_order(store: Arc<dyn Store>) {
    let s = &*store;
    setup(s).await;
    s.declare_event_kind(kind_record(meeting(), None), Actor("test"), at(0)).await.unwrap();
    s.declare_event_kind(kind_record(activity(), None), Actor("test"), at(0)).await.unwrap();
    for seed in 0..6u64 {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        let ordered = s.create_user(new_user(&format!("ordered{seed}"), false), None, at(0)).await.unwrap();
        let shuffled = s.create_user(new_user(&format!("shuffled{seed}"), false), None, at(0)).await.unwrap();
        let list = captures(&ordered, &mut rng);
        // In order, one capture at a time.
        for (device, c) in &list {
            s.ingest_events(batch(&ordered, device, vec![c.clone()]), at(1000)).await.unwrap();
        }
        // Shuffled, per device in random batches, the devices writing at once.
        let mut mine = captures(&shuffled, &mut rand::rngs::SmallRng::seed_from_u64(seed));
        mine.shuffle(&mut rng);
        let per_device: Vec<Vec<PreparedCapture>> = (0..3)
            .map(|d| mine.iter().filter(|(dev, _)| *dev == format!("dev-{d}")).map(|(_, c)| c.clone()).collect())
            .collect();
        let sizes: Vec<usize> = (0..3).map(|_| rng.gen_range(1..6)).collect();
        let (store2, user2) = (store.clone(), shuffled.clone());
        concurrently(3, move |d| {
            let (s, u, caps, size) = (store2.clone(), user2.clone(), per_device[d].clone(), sizes[d]);
            async move {
                for chunk in caps.chunks(size) {
                    s.ingest_events(batch(&u, &format!("dev-{d}"), chunk.to_vec()), at(2000)).await.unwrap();
                }
            }
        })
        .await;
        let (a, b) = (pulled_view(s, &ordered, 1000).await, pulled_view(s, &shuffled, 7).await);
        assert_eq!(shape(&a), shape(&b), "seed {seed}: the order changed the stored result");
        let meetings = a.values().filter(|v| v.0 == "meeting").count();
        assert_eq!(meetings, 12, "seed {seed}: each meeting once");
        for v in a.values().filter(|v| v.0 == "meeting") {
            assert!(v.3.contains("dev-0"), "every observer is kept");
        }
        // Interval events of one window never overlap or touch.
        for window in ["editor", "browser"] {
            let mut ivs: Vec<(i64, i64)> = a.values().filter(|v| v.1.contains(window)).filter_map(|v| v.2).collect();
            ivs.sort();
            assert!(ivs.windows(2).all(|w| w[0].1 < w[1].0), "seed {seed}: {window} intervals overlap: {ivs:?}");
        }
        // Sending everything again changes nothing.
        let before = s.pull_events(UserId(&shuffled.id), AppId("cli"), 0, 10_000).await.unwrap().cursor;
        for (device, c) in &mine {
            let r = s.ingest_events(batch(&shuffled, device, vec![c.clone()]), at(3000)).await.unwrap();
            assert!(matches!(r[0], Ingested::Duplicate(_)), "seed {seed}: a resent capture is a duplicate: {r:?}");
        }
        assert_eq!(
            s.pull_events(UserId(&shuffled.id), AppId("cli"), 0, 10_000).await.unwrap().cursor,
            before,
            "resending changed the stream"
        );
    }
}

/// Batches larger than one insert statement: new events go in many to a
/// statement, and one batch mixes new events, events another device stored,
/// repeats within the batch and interval captures; each answer is the same as
/// one at a time would give, and each event is stored once.
pub async fn large_batches_store_each_event_once(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    let (m, a) = (meeting(), activity());
    let standup = |i: usize| {
        let starts = format!("2026-11-{:02}T{:02}:{:02}:00Z", 1 + i / 1440, (i / 60) % 24, i % 60);
        prepare(&m, &user.id, serde_json::json!({"title": "Stand-up", "starts": starts}), None)
    };
    let first: Vec<PreparedCapture> = (0..120).map(standup).collect();
    let r = s.ingest_events(batch(&user, "laptop", first), at(100)).await.unwrap();
    assert!(r.iter().all(|x| matches!(x, Ingested::Created(_))), "{r:?}");
    let mut second: Vec<PreparedCapture> = (60..180).map(standup).collect();
    second.insert(80, standup(130)); // 130 twice in the batch (it is also at index 70)
    second.push(standup(100));
    second.push(prepare(&a, &user.id, serde_json::json!({"window": "editor"}), Some((0, 1000))));
    let r = s.ingest_events(batch(&user, "desktop", second.clone()), at(200)).await.unwrap();
    assert_eq!(r.len(), second.len());
    let created = r.iter().filter(|x| matches!(x, Ingested::Created(_))).count();
    assert_eq!(created, 60 + 1, "60 new meetings and the activity");
    for (c, x) in second.iter().zip(&r) {
        assert_eq!(x.id() == c.series, c.interval.is_none(), "each answer names its capture's event");
    }
    let mut cursor = 0;
    let mut seen = BTreeMap::new();
    loop {
        let p = s.pull_events(UserId(&user.id), AppId("cli"), cursor, 50).await.unwrap();
        if p.events.is_empty() {
            break;
        }
        cursor = p.cursor;
        for e in p.events {
            seen.insert(e.id.clone(), e);
        }
    }
    assert_eq!(seen.len(), 181, "180 meetings and one activity, each once");
    for i in [0, 59] {
        let o: Vec<&str> = seen[&standup(i).series].observers.iter().map(|o| o.device_id.as_str()).collect();
        assert_eq!(o, ["laptop"]);
    }
    for i in [60, 100, 119] {
        let o: Vec<&str> = seen[&standup(i).series].observers.iter().map(|o| o.device_id.as_str()).collect();
        assert_eq!(o, ["laptop", "desktop"], "meeting {i}");
    }
    let o: Vec<&str> = seen[&standup(130).series].observers.iter().map(|o| o.device_id.as_str()).collect();
    assert_eq!(o, ["desktop"], "a repeat within the batch adds nothing");
    // The same batch again: every capture a duplicate, the stream unchanged.
    let r = s.ingest_events(batch(&user, "desktop", second), at(300)).await.unwrap();
    assert!(r.iter().all(|x| matches!(x, Ingested::Duplicate(_))), "{r:?}");
    assert_eq!(s.pull_events(UserId(&user.id), AppId("cli"), cursor, 50).await.unwrap().events, []);
}

/// Answers per capture: created, then duplicate (a new observer changes the
/// stream, a repeat does not); intervals merge into the union and leave tombstones.
pub async fn event_outcomes_and_the_stream(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    let (m, a) = (meeting(), activity());
    let standup =
        prepare(&m, &user.id, serde_json::json!({"title": "Stand-up", "starts": "2026-11-30T09:00:00Z"}), None);
    let id = standup.series.clone();
    let r = s.ingest_events(batch(&user, "laptop", vec![standup.clone(), standup.clone()]), at(100)).await.unwrap();
    assert_eq!(r, [Ingested::Created(id.clone()), Ingested::Duplicate(id.clone())]);
    let p = s.pull_events(UserId(&user.id), AppId("cli"), 0, 100).await.unwrap();
    assert_eq!((p.events.len(), p.cursor), (1, 1));
    let r = s.ingest_events(batch(&user, "desktop", vec![standup.clone()]), at(200)).await.unwrap();
    assert_eq!(r, [Ingested::Duplicate(id.clone())]);
    let p = s.pull_events(UserId(&user.id), AppId("cli"), 1, 100).await.unwrap();
    // Numbers are increasing, not consecutive: an insert that finds its ID taken leaves a gap.
    assert!(p.cursor > 1 && p.events.len() == 1, "a new observer is a change: {p:?}");
    let observers: Vec<(&str, i64)> =
        p.events[0].observers.iter().map(|o| (o.device_id.as_str(), o.first_seen_at.as_millis())).collect();
    assert_eq!(observers, [("laptop", T0 + 100), ("desktop", T0 + 200)]);
    let after_observer = p.cursor;
    assert_eq!(s.pull_events(UserId(&user.id), AppId("cli"), after_observer, 100).await.unwrap().events, []);

    let w = |s, e| prepare(&a, &user.id, serde_json::json!({"window": "editor"}), Some((s, e)));
    let r = s.ingest_events(batch(&user, "laptop", vec![w(0, 10_000), w(20_000, 30_000)]), at(300)).await.unwrap();
    assert!(matches!((&r[0], &r[1]), (Ingested::Created(_), Ingested::Created(_))), "{r:?}");
    let (first, second) = (r[0].id().to_string(), r[1].id().to_string());
    let r = s.ingest_events(batch(&user, "desktop", vec![w(2_000, 8_000)]), at(400)).await.unwrap();
    assert_eq!(r, [Ingested::Duplicate(first.clone())], "within an event: a duplicate, with a new part");
    let r = s.ingest_events(batch(&user, "desktop", vec![w(10_000, 20_000)]), at(500)).await.unwrap();
    assert_eq!(r, [Ingested::Merged(first.clone())], "touching both: one event, keeping the first's ID (same start)");
    let r = s.ingest_events(batch(&user, "phone", vec![w(-5_000, 0)]), at(600)).await.unwrap();
    let Ingested::Merged(widened) = &r[0] else { panic!("{r:?}") };
    assert_ne!(widened, &first, "a new start is a new ID");
    let p = s.pull_events(UserId(&user.id), AppId("cli"), after_observer, 100).await.unwrap();
    let live: Vec<&StoredEvent> = {
        let mut latest = BTreeMap::new();
        for e in &p.events {
            latest.insert(e.id.clone(), e);
        }
        latest.into_values().filter(|e| e.merged_into.is_none()).collect()
    };
    assert_eq!(live.len(), 1);
    let e = live[0];
    assert_eq!(e.interval.map(|i| (i.start.as_millis() - T0, i.end.as_millis() - T0)), Some((-5_000, 30_000)));
    let devices: BTreeSet<&str> = e.observers.iter().map(|o| o.device_id.as_str()).collect();
    assert_eq!(devices, BTreeSet::from(["laptop", "desktop", "phone"]));
    assert_eq!(e.parts.len(), 5, "every captured part is kept: {:?}", e.parts);
    let tombstones: BTreeMap<&str, &str> =
        p.events.iter().filter_map(|e| Some((e.id.as_str(), e.merged_into.as_deref()?))).collect();
    let want = BTreeMap::from([(second.as_str(), first.as_str()), (first.as_str(), widened.as_str())]);
    assert_eq!(tombstones, want, "each absorbed event says where it went");
}

/// A kind is declared once: the same again is unchanged, a new retention is an
/// update, another identity is refused; each change is audited. Retention and
/// deleting the account remove events.
pub async fn event_kinds_retention_and_deletion(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    let k = kind_record(meeting(), None);
    assert!(matches!(s.declare_event_kind(k.clone(), Actor("u"), at(0)).await.unwrap(), DeclaredKind::Created(_)));
    assert!(matches!(s.declare_event_kind(k.clone(), Actor("u"), at(1)).await.unwrap(), DeclaredKind::Unchanged(_)));
    let mut other = k.clone();
    other.spec.precision = Precision::Second;
    assert!(matches!(s.declare_event_kind(other, Actor("u"), at(2)).await.unwrap(), DeclaredKind::Conflict(_)));
    let kept = kind_record(meeting(), Some(3600));
    assert!(matches!(s.declare_event_kind(kept, Actor("u"), at(3)).await.unwrap(), DeclaredKind::Updated(_)));
    assert_eq!(s.event_kind(AppId("cli"), "meeting").await.unwrap().map(|k| k.retention_secs), Some(Some(3600)));
    assert_eq!(s.event_kinds(AppId("cli")).await.unwrap().len(), 1);
    assert_eq!(count_kind(s, AuditKind::EventKindDeclared).await, 2, "creation and the retention change");

    let c = prepare(&meeting(), &user.id, serde_json::json!({"title": "Old", "starts": "2026-01-01T09:00:00Z"}), None);
    s.ingest_events(batch(&user, "laptop", vec![c]), at(0)).await.unwrap();
    assert_eq!(s.sweep(at(3_599_000)).await.unwrap().events, 0);
    assert_eq!(s.sweep(at(3_601_000)).await.unwrap().events, 1, "gone after the kind's retention");
    let c = prepare(&meeting(), &user.id, serde_json::json!({"title": "New", "starts": "2026-01-01T09:00:00Z"}), None);
    s.ingest_events(batch(&user, "laptop", vec![c]), at(4_000_000)).await.unwrap();
    assert!(s.delete_user(UserId(&user.id), Actor("admin"), at(4_000_001)).await.unwrap());
    assert_eq!(
        s.pull_events(UserId(&user.id), AppId("cli"), 0, 100).await.unwrap().events,
        [],
        "the account's events go with it"
    );
    verify_audit_log(s).await;
}
