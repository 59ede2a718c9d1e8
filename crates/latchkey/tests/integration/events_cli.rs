//! Multi-machine sync through the real `latchkey` binary: two machines of one user
//! declare kinds, push overlapping captures and pull one merged stream; a push
//! killed mid-flush is finished by `events flush` without losing or doubling
//! anything; a file with bad lines queues nothing.

use crate::backend_tests;
use crate::cli::{laptop_and_server, Machine};
use crate::support::*;
use latchkey_client::outbox::Outbox;
use latchkey_client::{Auth, Client};
use latchkey_proto::api::{KindInfo, SyncedEvent};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

/// Captures as a JSON Lines file.
fn jsonl(lines: &[Value]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// The live view of a stream: each event's latest state, without those merged into others.
fn live(events: impl IntoIterator<Item = SyncedEvent>) -> BTreeMap<String, SyncedEvent> {
    let mut latest: BTreeMap<String, SyncedEvent> = BTreeMap::new();
    for e in events {
        if latest.get(&e.id).is_none_or(|seen| seen.seq < e.seq) {
            latest.insert(e.id.clone(), e);
        }
    }
    latest.retain(|_, e| e.merged_into.is_none());
    latest
}

/// `latchkey events pull` from the start: the events (JSON lines on stdout) and the cursor (stderr).
async fn pull_all(m: &Machine) -> (Vec<SyncedEvent>, i64) {
    pull_since(m, 0).await
}

async fn pull_since(m: &Machine, since: i64) -> (Vec<SyncedEvent>, i64) {
    let (ok, out, err) = m.run(&["events", "pull", "--since", &since.to_string()]).await;
    assert!(ok, "pull failed: {err}");
    let events = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a SyncedEvent ({e}): {l}")))
        .collect();
    (events, cursor(&err))
}

fn cursor(stderr: &str) -> i64 {
    let line = stderr.lines().find_map(|l| l.strip_prefix("cursor ")).unwrap_or_else(|| panic!("no cursor: {stderr}"));
    line.trim().parse().expect("cursor is a number")
}

fn device_id(m: &Machine) -> String {
    m.session().device.expect("the session knows its device").id
}

fn observers(e: &SyncedEvent) -> BTreeSet<String> {
    e.observers.iter().map(|o| o.device_id.clone()).collect()
}

fn instant(s: &str) -> SystemTime {
    humantime::parse_rfc3339_weak(s).unwrap_or_else(|e| panic!("{s:?} is not RFC 3339: {e}"))
}

fn interval(e: &SyncedEvent) -> (SystemTime, SystemTime) {
    (instant(e.start.as_deref().expect("start")), instant(e.end.as_deref().expect("end")))
}

/// Declares the two kinds these tests use; declaring them again is safe.
async fn declare_kinds(m: &Machine) {
    let (ok, out, err) = m
        .run(&[
            "events",
            "kinds",
            "declare",
            "meeting",
            "--field",
            "title:string",
            "--field",
            "starts_at:timestamp",
            "--precision",
            "minute",
        ])
        .await;
    assert!(ok, "{err}");
    assert!(
        out.contains("meeting: identity title:string, starts_at:timestamp; merge exact, precision minute"),
        "{out}"
    );
    let (ok, _, err) =
        m.run(&["events", "kinds", "declare", "activity", "--field", "name:string", "--merge", "interval"]).await;
    assert!(ok, "{err}");
}

/// Two machines capture the same meeting and overlapping stretches of work: the server keeps
/// each event once, and both machines pull the same live view, each event observed by both.
async fn two_machines_pull_one_merged_stream(b: Backend) {
    let app = spawn_app(b).await;
    let alice = app.signed_in("alice").await;
    let (laptop, server) = laptop_and_server(&app, &alice).await;
    declare_kinds(&laptop).await;
    declare_kinds(&server).await;
    // A kind's identity cannot change once declared.
    let (ok, _, err) = server.run(&["events", "kinds", "declare", "meeting", "--field", "title:string"]).await;
    assert!(!ok, "redeclaring with another identity is refused: {err}");
    let (ok, out, err) = server.run(&["events", "kinds", "list", "--json"]).await;
    assert!(ok, "{err}");
    let kinds: Vec<KindInfo> = serde_json::from_str(&out).expect("kinds");
    let by_name: BTreeMap<_, _> = kinds.iter().map(|k| (k.name.as_str(), &k.declaration)).collect();
    assert_eq!(by_name.keys().copied().collect::<Vec<_>>(), ["activity", "meeting"]);
    assert_eq!(by_name["meeting"].identity.len(), 2, "the first declaration stands");
    assert_eq!((by_name["meeting"].precision.as_str(), by_name["activity"].merge.as_str()), ("minute", "interval"));

    let laptop_file = jsonl(&[
        json!({"kind": "meeting", "identity": {"title": "Standup", "starts_at": "2026-03-02T09:00:00Z"}}),
        json!({"kind": "meeting", "identity": {"title": "1:1 with Sam", "starts_at": "2026-03-02T11:00:00Z"}}),
        json!({"kind": "activity", "identity": {"name": "coding"},
               "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T10:30:00Z"}),
        json!({"kind": "activity", "identity": {"name": "coding"},
               "start": "2026-03-02T14:00:00Z", "end": "2026-03-02T14:10:00Z"}),
    ]);
    let (ok, out, err) = laptop.run_with_input(&["events", "push", "-", "--json"], &laptop_file).await;
    assert!(ok, "{err}");
    let r: Value = serde_json::from_str(&out).expect("json report");
    assert_eq!(r, json!({"queued": 4, "created": 4, "duplicate": 0, "merged": 0, "rejected": [], "pending": 0}));

    // The same standup (20 s later: the same minute), a meeting of its own, and work overlapping the laptop's.
    let server_file = jsonl(&[
        json!({"kind": "meeting", "identity": {"title": "Standup", "starts_at": "2026-03-02T09:00:20Z"}}),
        json!({"kind": "meeting", "identity": {"title": "Retro", "starts_at": "2026-03-02T16:00:00Z"}}),
        json!({"kind": "activity", "identity": {"name": "coding"},
               "start": "2026-03-02T10:20:00Z", "end": "2026-03-02T11:00:00Z"}),
    ]);
    let (ok, out, err) = server.run_with_input(&["events", "push", "-"], &server_file).await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "1 created, 1 duplicate, 1 merged, 0 rejected");
    // Pushing the same file again is safe: nothing new.
    let (ok, out, err) = server.run_with_input(&["events", "push", "-", "--json"], &server_file).await;
    assert!(ok, "{err}");
    let r: Value = serde_json::from_str(&out).expect("json report");
    assert_eq!((r["created"].as_u64(), r["rejected"].as_array().map(Vec::len)), (Some(0), Some(0)), "{r}");

    let (on_laptop, laptop_cursor) = pull_all(&laptop).await;
    let (on_server, server_cursor) = pull_all(&server).await;
    assert_eq!(laptop_cursor, server_cursor);
    let (view, other_view) = (live(on_laptop), live(on_server));
    assert_eq!(view, other_view, "both machines see the same events");
    let ids: Vec<&String> = view.keys().collect();
    assert_eq!(ids.len(), 5, "each event once: {view:#?}");

    let (l, s) = (device_id(&laptop), device_id(&server));
    let both: BTreeSet<String> = [l.clone(), s.clone()].into();
    let meetings: BTreeMap<&str, &SyncedEvent> = view
        .values()
        .filter(|e| e.kind == "meeting")
        .map(|e| (e.identity["title"].as_str().expect("title"), e))
        .collect();
    assert_eq!(meetings.keys().copied().collect::<Vec<_>>(), ["1:1 with Sam", "Retro", "Standup"]);
    assert_eq!(observers(meetings["Standup"]), both, "seen by both machines");
    assert_eq!(observers(meetings["1:1 with Sam"]), [l.clone()].into());
    assert_eq!(observers(meetings["Retro"]), [s.clone()].into());
    assert!(meetings.values().all(|e| e.client_id == latchkey_proto::CLI_CLIENT_ID));

    let mut work: Vec<&SyncedEvent> = view.values().filter(|e| e.kind == "activity").collect();
    work.sort_by_key(|e| interval(e));
    let at = |s: &str| instant(&format!("2026-03-02T{s}:00Z"));
    assert_eq!(
        work.iter().map(|e| interval(e)).collect::<Vec<_>>(),
        [(at("10:00"), at("11:00")), (at("14:00"), at("14:10"))]
    );
    assert_eq!(observers(work[0]), both, "the merged stretch was observed by both");
    let parts: BTreeSet<&str> = work[0].parts.iter().map(|p| p.device_id.as_str()).collect();
    assert_eq!(parts, [l.as_str(), s.as_str()].into(), "with the part each captured");
    assert_eq!(observers(work[1]), [l.clone()].into());

    // Nothing changed after the cursor; a long-polling pull wakes up when the other machine pushes.
    let (after, same) = pull_since(&laptop, laptop_cursor).await;
    assert!(after.is_empty() && same == laptop_cursor, "{after:?} {same}");
    let started = Instant::now();
    let waiting = laptop
        .cmd(&["events", "pull", "--since", &laptop_cursor.to_string(), "--wait", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pull");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let lunch =
        jsonl(&[json!({"kind": "meeting", "identity": {"title": "Lunch", "starts_at": "2026-03-02T12:00:00Z"}})]);
    let (ok, _, err) = server.run_with_input(&["events", "push", "-"], &lunch).await;
    assert!(ok, "{err}");
    let out = tokio::time::timeout(Duration::from_secs(40), waiting.wait_with_output())
        .await
        .expect("pull ended")
        .expect("ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("Lunch"), "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(20), "woke up on the push, not at the timeout");
    assert!(cursor(&String::from_utf8_lossy(&out.stderr)) > laptop_cursor);
}

const PINGS: usize = 5_000;

/// `latchkey events push` of 5,000 captures killed with SIGKILL while it sends them:
/// `latchkey events flush` sends the rest, and the server holds each event exactly once.
async fn a_push_killed_mid_flush_loses_nothing_and_doubles_nothing(b: Backend) {
    let app = spawn_app(b).await;
    let alice = app.signed_in("alice").await;
    let (laptop, server) = laptop_and_server(&app, &alice).await;
    let (ok, _, err) = laptop.run(&["events", "kinds", "declare", "ping", "--field", "n:integer"]).await;
    assert!(ok, "{err}");
    let file = laptop.profile().dir().join("pings.jsonl");
    let pings: Vec<Value> = (0..PINGS).map(|n| json!({"kind": "ping", "identity": {"n": n}})).collect();
    std::fs::write(&file, jsonl(&pings)).expect("write captures");

    const BATCH: usize = 50;
    let mut push = laptop
        .cmd(&["events", "push", file.to_str().expect("utf-8 path"), "--batch", &BATCH.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn push");
    // Watch from the other machine; kill the push as soon as the server has some of them.
    let watcher = Client::new(&app.url).expect("client").with_device_key(server.key());
    let token = server.session().access_token;
    let started = Instant::now();
    loop {
        let seen = watcher.pull_events(Auth::Access(&token), 0, 1, 0).await.expect("pull");
        if !seen.events.is_empty() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the push never reached the server");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    push.start_kill().expect("SIGKILL");
    let status = push.wait().await.expect("push ended");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "killed, not finished: {status:?}");
    }
    let left = Outbox::open(laptop.profile().outbox_path()).expect("outbox").pending().expect("pending");
    // All 5,000 may still be queued: the server had stored the first batch, the push had not yet heard so.
    assert!(left > 0 && left <= PINGS, "killed mid-flush, with {left} of {PINGS} still queued");

    let (ok, out, err) = laptop.run(&["events", "flush", "--json"]).await;
    assert!(ok, "{err}");
    let r: Value = serde_json::from_str(&out).expect("json report");
    let (created, duplicate) =
        (r["created"].as_u64().expect("n") as usize, r["duplicate"].as_u64().expect("n") as usize);
    assert_eq!(created + duplicate, left, "every queued capture was answered: {r}");
    assert!(duplicate <= BATCH, "only the batch in flight was sent twice: {r}");
    assert_eq!(
        (r["merged"].as_u64(), r["rejected"].as_array().map(Vec::len), r["pending"].as_u64()),
        (Some(0), Some(0), Some(0))
    );
    assert_eq!(Outbox::open(laptop.profile().outbox_path()).expect("outbox").pending().expect("pending"), 0);
    let (ok, out, _) = laptop.run(&["events", "flush"]).await;
    assert!(ok && out.contains("Nothing to send"), "{out}");

    let (events, _) = pull_all(&server).await;
    assert_eq!(events.len(), PINGS, "one event per capture, none twice");
    let view = live(events);
    let numbers: BTreeSet<u64> = view.values().map(|e| e.identity["n"].as_u64().expect("n")).collect();
    assert_eq!(numbers, (0..PINGS as u64).collect(), "none lost");
    let only_laptop: BTreeSet<String> = [device_id(&laptop)].into();
    assert!(view.values().all(|e| observers(e) == only_laptop));
}

/// A file with a bad line is refused with the line numbers and queues nothing; a capture
/// the server refuses is reported with its reason, not retried, and the exit code says so.
async fn bad_lines_queue_nothing_and_rejections_are_reported(b: Backend) {
    let app = spawn_app(b).await;
    let alice = app.signed_in("alice").await;
    let m = Machine::new(&app);
    m.login(&app, &alice, &["--yes", "--name", "Laptop", "--location", "desk"]).await;
    let (ok, _, err) = m.run(&["events", "kinds", "declare", "ping", "--field", "n:integer"]).await;
    assert!(ok, "{err}");
    let file = "{\"kind\":\"ping\",\"identity\":{\"n\":1}}\n\n{\"kind\":\"ping\"}\nnot json\n{\"kind\":\"ping\",\"identity\":{\"n\":2}}\n";
    let (ok, _, err) = m.run_with_input(&["events", "push", "-"], file).await;
    assert!(!ok, "refused");
    assert!(err.contains("line 3") && err.contains("identity") && err.contains("line 4"), "{err}");
    assert!(!err.contains("line 1,") && !err.contains("line 5"), "good lines are not blamed: {err}");
    assert!(err.contains("nothing was queued"), "{err}");
    let path = m.profile().outbox_path();
    assert!(!path.exists() || Outbox::open(&path).expect("outbox").pending().expect("pending") == 0);
    let (events, _) = pull_all(&m).await;
    assert!(events.is_empty(), "nothing reached the server: {events:?}");

    let file =
        jsonl(&[json!({"kind": "no-such-kind", "identity": {"n": 1}}), json!({"kind": "ping", "identity": {"n": 1}})]);
    let (ok, out, err) = m.run_with_input(&["events", "push", "-"], &file).await;
    assert!(!ok, "a rejection is a failure for scripts");
    assert_eq!(out.trim(), "1 created, 0 duplicate, 0 merged, 1 rejected");
    assert!(err.contains("rejected") && err.contains("no-such-kind"), "with the capture and the reason: {err}");
    assert_eq!(Outbox::open(&path).expect("outbox").pending().expect("pending"), 0, "not retried");
    let (events, _) = pull_all(&m).await;
    assert_eq!(events.len(), 1);
}

backend_tests!(
    two_machines_pull_one_merged_stream,
    a_push_killed_mid_flush_loses_nothing_and_doubles_nothing,
    bad_lines_queue_nothing_and_rejections_are_reported,
);
