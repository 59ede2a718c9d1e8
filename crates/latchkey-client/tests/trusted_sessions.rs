//! Three library devices against a small in-memory stand-in for the server's
//! trusted-session API: the paths, methods, bodies and the event stream the
//! client uses, with the server's checks taken from `latchkey_domain` (so a
//! signature or descriptor the client gets wrong is refused here too). It is
//! no substitute for the real server; it pins the client's side of the wire.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use latchkey_client::dpop::DeviceKey;
use latchkey_client::trusted::{Received, TrustedDevice, TrustedError, Update};
use latchkey_client::Client;
use latchkey_domain::time::Timestamp;
use latchkey_domain::trust::{rotation_statement, session_key_statement, trust_statement, PublicKey, PROTOCOL_VERSION};
use latchkey_domain::trusted_session::{
    check_issue, join_statement, plan_targets, Descriptor, Resolved, SessionOptions, TargetFacts, DEFAULT_MEMBER_LIMIT,
};
use latchkey_proto::paths;
use latchkey_proto::trust::{
    ChannelEvent, CreateSession, DeviceKeys, IssueInvitations, JoinRequest, KeyRotation, MemberInfo, RotateKeyRequest,
    SendMessage, Sent, SessionCreated, SessionInfo, SessionKey, SessionPlan, SessionRequest, TargetResult, TrustInfo,
    TrustRequest,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

struct Dev {
    pk: PublicKey,
    session_key: Option<SessionKey>,
    rotations: Vec<KeyRotation>,
}

struct Sess {
    creator: String,
    epoch: u32,
    expires_at: i64,
    members: BTreeMap<String, String>,
    rekey_needed: bool,
    seqs: BTreeMap<String, i64>,
}

#[derive(Default)]
struct World {
    devs: BTreeMap<String, Dev>,
    trusts: BTreeSet<(String, String)>,
    planned: BTreeMap<String, Descriptor>,
    sessions: BTreeMap<String, Sess>,
    used: BTreeSet<String>,
    inbox: BTreeMap<String, Vec<ChannelEvent>>,
    conns: BTreeMap<String, mpsc::UnboundedSender<ChannelEvent>>,
    pos: i64,
}

type Shared = Arc<Mutex<World>>;
type Refusal = (StatusCode, Json<Value>);

fn refuse(status: StatusCode, code: &str) -> Refusal {
    (status, Json(json!({"error": code, "error_description": code})))
}

fn now() -> i64 {
    latchkey_client::profile::now_ms()
}

/// The fake's tokens are the device IDs; the DPoP proof must be there.
fn who(h: &HeaderMap) -> Result<String, Refusal> {
    if h.get("dpop").is_none() {
        return Err(refuse(StatusCode::UNAUTHORIZED, "invalid_token"));
    }
    let auth = h.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    auth.strip_prefix("DPoP ").map(str::to_string).ok_or_else(|| refuse(StatusCode::UNAUTHORIZED, "invalid_token"))
}

impl World {
    fn deliver(&mut self, to: &str, ev: ChannelEvent) {
        match self.conns.get(to) {
            Some(tx) if tx.send(ev.clone()).is_ok() => {}
            _ => self.inbox.entry(to.to_string()).or_default().push(ev),
        }
    }

    fn info(&self, id: &str) -> Option<SessionInfo> {
        let s = self.sessions.get(id)?;
        Some(SessionInfo {
            id: id.into(),
            creator: s.creator.clone(),
            status: "open".into(),
            epoch: s.epoch,
            rekey_needed: s.rekey_needed,
            expires_at_ms: s.expires_at,
            members: s.members.iter().map(|(d, st)| MemberInfo { device_id: d.clone(), status: st.clone() }).collect(),
        })
    }

    fn live(s: &Sess) -> Vec<String> {
        s.members.iter().filter(|(_, st)| *st == "invited" || *st == "joined").map(|(d, _)| d.clone()).collect()
    }

    fn keys(&self, id: &str) -> Option<DeviceKeys> {
        let d = self.devs.get(id)?;
        Some(DeviceKeys {
            device_id: id.into(),
            name: format!("device {id}"),
            slug: id.into(),
            status: "active".into(),
            public_key: d.pk.to_b64(),
            fingerprint: d.pk.fingerprint().to_string(),
            session_key: d.session_key.clone(),
            rotations: d.rotations.clone(),
        })
    }
}

async fn publish(State(w): State<Shared>, h: HeaderMap, Json(b): Json<SessionKey>) -> Result<StatusCode, Refusal> {
    let me = who(&h)?;
    let mut w = w.lock().unwrap();
    let dev = w.devs.get_mut(&me).ok_or_else(|| refuse(StatusCode::NOT_FOUND, "not_found"))?;
    let raw = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &b.key).unwrap();
    let stmt = session_key_statement(&me, b.protocol, &raw).unwrap();
    dev.pk.verify_b64(&stmt, &b.signature).map_err(|_| refuse(StatusCode::BAD_REQUEST, "invalid_signature"))?;
    dev.session_key = Some(b);
    Ok(StatusCode::NO_CONTENT)
}

async fn rotate(
    State(w): State<Shared>,
    h: HeaderMap,
    Json(b): Json<RotateKeyRequest>,
) -> Result<Json<latchkey_proto::oauth::TokenResponse>, Refusal> {
    let me = who(&h)?;
    let mut w = w.lock().unwrap();
    let dev = w.devs.get_mut(&me).ok_or_else(|| refuse(StatusCode::NOT_FOUND, "not_found"))?;
    let new = PublicKey::from_jwk(&b.public_jwk).map_err(|_| refuse(StatusCode::BAD_REQUEST, "invalid_request"))?;
    if let Some(sig) = &b.chain_signature {
        let stmt = rotation_statement(&me, &dev.pk, &new).unwrap();
        dev.pk.verify_b64(&stmt, sig).map_err(|_| refuse(StatusCode::BAD_REQUEST, "invalid_signature"))?;
    }
    dev.rotations.push(KeyRotation { old: dev.pk.to_b64(), new: new.to_b64(), signature: b.chain_signature });
    dev.pk = new;
    // The published session key was signed by the old key.
    dev.session_key = None;
    Ok(Json(latchkey_proto::oauth::TokenResponse {
        access_token: me,
        token_type: "DPoP".into(),
        expires_in: 3600,
        refresh_token: None,
        scope: None,
        id_token: None,
    }))
}

async fn device_keys(
    State(w): State<Shared>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<DeviceKeys>, Refusal> {
    who(&h)?;
    w.lock().unwrap().keys(&id).map(Json).ok_or_else(|| refuse(StatusCode::NOT_FOUND, "not_found"))
}

async fn add_trust(
    State(w): State<Shared>,
    h: HeaderMap,
    Json(b): Json<TrustRequest>,
) -> Result<(StatusCode, Json<TrustInfo>), Refusal> {
    let me = who(&h)?;
    let mut w = w.lock().unwrap();
    let my_pk = w.devs[&me].pk;
    let key = PublicKey::from_b64(&b.trustee_key).unwrap();
    if w.devs.get(&b.trustee).map(|d| d.pk) != Some(key) {
        return Err(refuse(StatusCode::CONFLICT, "wrong_key"));
    }
    let stmt = trust_statement(&me, &b.trustee, &key, Timestamp::from_millis(b.issued_at_ms)).unwrap();
    my_pk.verify_b64(&stmt, &b.signature).map_err(|_| refuse(StatusCode::BAD_REQUEST, "invalid_signature"))?;
    w.trusts.insert((me.clone(), b.trustee.clone()));
    let holds = w.trusts.contains(&(b.trustee.clone(), me.clone()));
    let info = TrustInfo {
        truster: me.clone(),
        truster_name: me,
        trustee: b.trustee.clone(),
        trustee_name: b.trustee,
        trustee_fingerprint: key.fingerprint().to_string(),
        created_at_ms: b.issued_at_ms,
        holds,
    };
    Ok((StatusCode::CREATED, Json(info)))
}

async fn plan(
    State(w): State<Shared>,
    h: HeaderMap,
    Json(req): Json<SessionRequest>,
) -> Result<Json<SessionPlan>, Refusal> {
    let me = who(&h)?;
    let mut w = w.lock().unwrap();
    let targets: Vec<(String, Resolved)> = req
        .targets
        .iter()
        .map(|t| {
            let r = match w.devs.get(t) {
                None => Resolved::Unknown,
                Some(d) => Resolved::Device(TargetFacts {
                    id: t.clone(),
                    active: true,
                    compatible: d.session_key.is_some(),
                    trust: match (
                        w.trusts.contains(&(me.clone(), t.clone())),
                        w.trusts.contains(&(t.clone(), me.clone())),
                    ) {
                        (true, true) => Ok(()),
                        (false, true) => Err(latchkey_domain::trust::Missing::Ours),
                        (true, false) => Err(latchkey_domain::trust::Missing::Theirs),
                        (false, false) => Err(latchkey_domain::trust::Missing::Both),
                    },
                    connections: u32::from(w.conns.contains_key(t)),
                }),
            };
            (t.clone(), r)
        })
        .collect();
    let opts =
        SessionOptions { partial: req.partial, online_only: req.online_only, member_limit: DEFAULT_MEMBER_LIMIT };
    let p = plan_targets(&me, &targets, opts);
    let results = p
        .outcomes
        .iter()
        .map(|(t, id, o)| TargetResult {
            target: t.clone(),
            device_id: id.clone(),
            outcome: o.as_str().into(),
            missing: match o {
                latchkey_domain::trusted_session::TargetOutcome::NotTrusted(m) => Some(m.as_str().into()),
                _ => None,
            },
        })
        .collect();
    let (descriptor, members) = if p.create {
        let d = Descriptor {
            session_id: uuid::Uuid::new_v4().to_string(),
            creator: me.clone(),
            members: p.members.clone(),
            epoch: 1,
            protocol: PROTOCOL_VERSION,
            expires_at: now() + req.ttl_secs.unwrap_or(3600) * 1000,
        };
        w.planned.insert(d.session_id.clone(), d.clone());
        (Some(d), p.members.iter().filter_map(|m| w.keys(m)).collect())
    } else {
        (None, vec![])
    };
    Ok(Json(SessionPlan { create: p.create, targets: results, descriptor, members }))
}

async fn create(
    State(w): State<Shared>,
    h: HeaderMap,
    Json(b): Json<CreateSession>,
) -> Result<Json<SessionCreated>, Refusal> {
    let me = who(&h)?;
    let mut w = w.lock().unwrap();
    let d = w.planned.remove(&b.descriptor.session_id).ok_or_else(|| refuse(StatusCode::NOT_FOUND, "not_found"))?;
    if d != b.descriptor {
        return Err(refuse(StatusCode::BAD_REQUEST, "invalid_request"));
    }
    let pk = w.devs[&me].pk;
    check_issue(&d, &me, &pk, &b.invitations, Timestamp::from_millis(now()))
        .map_err(|_| refuse(StatusCode::BAD_REQUEST, "invalid_invitation"))?;
    let members =
        d.members.iter().map(|m| (m.clone(), if *m == me { "joined" } else { "invited" }.to_string())).collect();
    w.sessions.insert(
        d.session_id.clone(),
        Sess { creator: me, epoch: 1, expires_at: d.expires_at, members, rekey_needed: false, seqs: BTreeMap::new() },
    );
    for inv in b.invitations {
        let to = inv.invitation.recipient.clone();
        w.deliver(&to, ChannelEvent::Invitation { invitation: Box::new(inv) });
    }
    Ok(Json(SessionCreated { targets: vec![], session: w.info(&d.session_id) }))
}

async fn show(State(w): State<Shared>, h: HeaderMap, Path(id): Path<String>) -> Result<Json<SessionInfo>, Refusal> {
    who(&h)?;
    w.lock().unwrap().info(&id).map(Json).ok_or_else(|| refuse(StatusCode::NOT_FOUND, "not_found"))
}

async fn join(
    State(w): State<Shared>,
    h: HeaderMap,
    Path(id): Path<String>,
    Json(b): Json<JoinRequest>,
) -> Result<Json<SessionInfo>, Refusal> {
    let me = who(&h)?;
    let mut w = w.lock().unwrap();
    let pk = w.devs[&me].pk;
    let epoch = w.sessions.get(&id).ok_or_else(|| refuse(StatusCode::NOT_FOUND, "not_found"))?.epoch;
    pk.verify_b64(&join_statement(&id, epoch, &me, &b.nonce), &b.signature)
        .map_err(|_| refuse(StatusCode::BAD_REQUEST, "invalid_signature"))?;
    if !w.used.insert(b.nonce) {
        return Err(refuse(StatusCode::CONFLICT, "invitation_used"));
    }
    if let Some(s) = w.sessions.get_mut(&id) {
        s.members.insert(me, "joined".into());
    }
    Ok(Json(w.info(&id).unwrap()))
}

async fn leave(State(w): State<Shared>, h: HeaderMap, Path(id): Path<String>) -> Result<StatusCode, Refusal> {
    let me = who(&h)?;
    let mut w = w.lock().unwrap();
    w.pos += 1;
    let pos = w.pos;
    let s = w.sessions.get_mut(&id).ok_or_else(|| refuse(StatusCode::NOT_FOUND, "not_found"))?;
    s.members.insert(me.clone(), "left".into());
    s.epoch += 1;
    s.rekey_needed = true;
    let (epoch, live) = (s.epoch, World::live(s));
    for m in live {
        let ev = ChannelEvent::Session {
            id: pos,
            session_id: id.clone(),
            event: "rekey_needed".into(),
            device: Some(me.clone()),
            epoch,
        };
        w.deliver(&m, ev);
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn issue(
    State(w): State<Shared>,
    h: HeaderMap,
    Path(id): Path<String>,
    Json(b): Json<IssueInvitations>,
) -> Result<StatusCode, Refusal> {
    let me = who(&h)?;
    let mut w = w.lock().unwrap();
    let pk = w.devs[&me].pk;
    let s = w.sessions.get_mut(&id).ok_or_else(|| refuse(StatusCode::NOT_FOUND, "not_found"))?;
    if !s.rekey_needed {
        return Err(refuse(StatusCode::CONFLICT, "conflict"));
    }
    let expected = Descriptor {
        session_id: id.clone(),
        creator: s.creator.clone(),
        members: World::live(s),
        epoch: s.epoch,
        protocol: PROTOCOL_VERSION,
        expires_at: s.expires_at,
    };
    check_issue(&expected, &me, &pk, &b.invitations, Timestamp::from_millis(now()))
        .map_err(|_| refuse(StatusCode::BAD_REQUEST, "invalid_invitation"))?;
    s.rekey_needed = false;
    for inv in b.invitations {
        let to = inv.invitation.recipient.clone();
        w.deliver(&to, ChannelEvent::Invitation { invitation: Box::new(inv) });
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn message(
    State(w): State<Shared>,
    h: HeaderMap,
    Path(id): Path<String>,
    Json(b): Json<SendMessage>,
) -> Result<Json<Sent>, Refusal> {
    let me = who(&h)?;
    let mut w = w.lock().unwrap();
    w.pos += 1;
    let pos = w.pos;
    let s = w.sessions.get_mut(&id).ok_or_else(|| refuse(StatusCode::NOT_FOUND, "not_found"))?;
    if s.rekey_needed {
        return Err(refuse(StatusCode::CONFLICT, "rekey_needed"));
    }
    if b.epoch != s.epoch {
        return Err(refuse(StatusCode::CONFLICT, "wrong_epoch"));
    }
    let last = s.seqs.get(&me).copied().unwrap_or(0);
    if b.seq != last + 1 {
        return Err(refuse(StatusCode::CONFLICT, "out_of_order"));
    }
    s.seqs.insert(me.clone(), b.seq);
    for m in World::live(s).into_iter().filter(|m| *m != me) {
        let ev = ChannelEvent::Message {
            id: pos,
            session_id: id.clone(),
            sender: me.clone(),
            seq: b.seq,
            epoch: b.epoch,
            body: b.body.clone(),
        };
        w.deliver(&m, ev);
    }
    Ok(Json(Sent { id: pos }))
}

async fn channel(
    State(w): State<Shared>,
    h: HeaderMap,
) -> Result<Sse<impl futures::Stream<Item = Result<Event, Infallible>>>, Refusal> {
    let me = who(&h)?;
    let (tx, rx) = mpsc::unbounded_channel();
    {
        let mut w = w.lock().unwrap();
        let _ = tx.send(ChannelEvent::Ready { connection: uuid::Uuid::new_v4().to_string() });
        for ev in w.inbox.remove(&me).unwrap_or_default() {
            let _ = tx.send(ev);
        }
        w.conns.insert(me, tx);
    }
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let ev = rx.recv().await?;
        Some((Ok(Event::default().data(serde_json::to_string(&ev).unwrap())), rx))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_millis(200))))
}

async fn serve(world: Shared) -> String {
    let app = Router::new()
        .route(paths::DEVICE_SESSION_KEY, put(publish))
        .route(paths::DEVICE_KEYS, get(device_keys))
        .route(paths::DEVICE_KEY, post(rotate))
        .route(paths::TRUSTS, post(add_trust))
        .route(paths::TRUSTED_SESSION_PLAN, post(plan))
        .route(paths::TRUSTED_SESSIONS, post(create))
        .route(paths::TRUSTED_SESSION, get(show))
        .route(paths::TRUSTED_SESSION_JOIN, post(join))
        .route(paths::TRUSTED_SESSION_LEAVE, post(leave))
        .route(paths::TRUSTED_SESSION_INVITATIONS, post(issue))
        .route(paths::TRUSTED_SESSION_MESSAGES, post(message))
        .route(paths::CHANNEL, get(channel))
        .with_state(world);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

struct Fixture {
    devices: BTreeMap<String, TrustedDevice>,
    dir: std::path::PathBuf,
}

/// Waits until every member of the session has joined.
async fn all_joined(dev: &TrustedDevice, session: &str) {
    for _ in 0..200 {
        let info = dev.session(session).await.unwrap();
        if info.members.iter().all(|m| m.status == "joined") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("not every member joined");
}

async fn fixture(ids: &[&str]) -> Fixture {
    let world: Shared = Arc::default();
    let base = serve(world.clone()).await;
    let dir = std::env::temp_dir().join(format!("latchkey-sessions-{}", uuid::Uuid::new_v4().simple()));
    let mut devices = BTreeMap::new();
    for id in ids {
        let key = Arc::new(DeviceKey::generate().unwrap());
        world
            .lock()
            .unwrap()
            .devs
            .insert(id.to_string(), Dev { pk: key.public_key(), session_key: None, rotations: vec![] });
        let dev = TrustedDevice::new(Client::new(&base).unwrap(), key, *id, *id, dir.join(id))
            .with_rekey_step(Duration::from_millis(50));
        dev.publish_session_key().await.unwrap();
        devices.insert(id.to_string(), dev);
    }
    Fixture { devices, dir }
}

/// Every pair of devices trusts each other, each recording the other's key locally.
async fn trust_all(f: &Fixture) {
    for a in f.devices.values() {
        for b in f.devices.values() {
            if a.device_id() != b.device_id() {
                let keys = a.device_keys(b.device_id()).await.unwrap();
                a.trust(&keys).await.unwrap();
            }
        }
    }
}

/// Runs a device's channel, handling every event and passing messages on.
fn run(dev: TrustedDevice) -> mpsc::UnboundedReceiver<Received> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut channel = dev.channel(0).await.unwrap();
        while let Some(u) = dev.next_update(&mut channel).await {
            if let Update::Message(m) = u.unwrap() {
                if tx.send(m).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("a message in time").expect("open")
}

/// Sends until the relay takes it (members join asynchronously; a rekey may still be under way).
async fn send_when_ready(dev: &TrustedDevice, session: &str, text: &str) {
    for _ in 0..100 {
        match dev.send(session, text.as_bytes()).await {
            Ok(_) => return,
            Err(e) if e.code() == Some("rekey_needed") => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(TrustedError::NoKey(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("the session never became ready");
}

#[tokio::test]
async fn three_devices_talk_and_rekey_when_one_leaves() {
    let f = fixture(&["a", "b", "c"]).await;
    trust_all(&f).await;
    let (a, b, c) = (f.devices["a"].clone(), f.devices["b"].clone(), f.devices["c"].clone());
    let mut from_a_at_b = run(b.clone());
    let mut from_a_at_c = run(c.clone());
    let mut at_a = run(a.clone());
    // Let the channels open so the plan sees everyone online.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let req = SessionRequest { targets: vec!["b".into(), "c".into()], ..SessionRequest::default() };
    let created = a.create_session(&req).await.unwrap();
    let session = created.session.expect("made").id;

    // b and c join from the invitations on their channels, then hear a.
    all_joined(&a, &session).await;
    send_when_ready(&a, &session, "hello").await;
    for rx in [&mut from_a_at_b, &mut from_a_at_c] {
        let m = next(rx).await;
        assert_eq!((m.sender.as_str(), m.seq, m.epoch, m.plaintext.as_slice()), ("a", 1, 1, b"hello".as_slice()));
    }
    send_when_ready(&b, &session, "hi from b").await;
    assert_eq!(next(&mut at_a).await.plaintext, b"hi from b");

    // c leaves: the creator (first in the rekey order) seals a new key to b alone.
    c.leave_session(&session).await.unwrap();
    assert!(c.store().session(&session).unwrap().is_none(), "c forgets the key");
    send_when_ready(&a, &session, "after c left").await;
    let m = next(&mut from_a_at_b).await;
    assert_eq!((m.epoch, m.seq, m.plaintext.as_slice()), (2, 2, b"after c left".as_slice()));
    assert_eq!(b.store().session(&session).unwrap().unwrap().latest().unwrap().map(|(e, _)| e), Some(2));
    let _ = std::fs::remove_dir_all(&f.dir);
}

#[tokio::test]
async fn a_member_this_machine_never_trusted_gets_no_key() {
    let f = fixture(&["a", "b"]).await;
    trust_all(&f).await;
    let a = f.devices["a"].clone();
    // The server says the trust holds, but this machine's own store lost b (or never had it).
    assert!(a.store().remove_trusted("b").unwrap());
    let req = SessionRequest { targets: vec!["b".into()], ..SessionRequest::default() };
    let e = a.create_session(&req).await.expect_err("refused");
    assert!(matches!(e, TrustedError::NotTrusted(ref d) if d == "b"), "{e}");
    let _ = std::fs::remove_dir_all(&f.dir);
}

#[tokio::test]
async fn a_session_is_not_made_when_a_target_is_refused() {
    let f = fixture(&["a", "b"]).await;
    let a = f.devices["a"].clone();
    let req = SessionRequest { targets: vec!["b".into(), "nobody".into()], ..SessionRequest::default() };
    let created = a.create_session(&req).await.unwrap();
    assert!(created.session.is_none());
    let outcomes: Vec<&str> = created.targets.iter().map(|t| t.outcome.as_str()).collect();
    assert_eq!(outcomes, vec!["not_trusted", "unknown_device"]);
    let _ = std::fs::remove_dir_all(&f.dir);
}

#[tokio::test]
async fn trust_follows_a_signed_rotation_and_stops_at_an_unsigned_one() {
    let f = fixture(&["a", "b"]).await;
    trust_all(&f).await;
    let a = f.devices["a"].clone();
    let mut b = f.devices["b"].clone();
    let old = b.device_key().public_key();
    let rotated = b.rotate_key(true).await.unwrap();
    b.adopt(&rotated);
    b.publish_session_key().await.unwrap();
    let new = b.device_key().public_key();
    assert_ne!(old, new);
    let mut at_b = run(b.clone());
    tokio::time::sleep(Duration::from_millis(100)).await;

    let req = SessionRequest { targets: vec!["b".into()], ..SessionRequest::default() };
    let session = a.create_session(&req).await.unwrap().session.expect("made").id;
    assert_eq!(a.store().trusted_key("b").unwrap(), Some(new), "a's store followed the signed rotation");
    all_joined(&a, &session).await;
    send_when_ready(&a, &session, "to the new key").await;
    assert_eq!(next(&mut at_b).await.plaintext, b"to the new key");

    // Without the old key's signature, a no longer seals to b.
    let rotated = b.rotate_key(false).await.unwrap();
    b.adopt(&rotated);
    b.publish_session_key().await.unwrap();
    let e = a.create_session(&req).await.expect_err("refused");
    assert!(matches!(e, TrustedError::KeyChanged { ref device, .. } if device == "b"), "{e}");
    let _ = std::fs::remove_dir_all(&f.dir);
}

#[tokio::test]
async fn invitations_not_signed_by_a_trusted_key_are_refused() {
    let f = fixture(&["a", "b"]).await;
    trust_all(&f).await;
    let b = f.devices["b"].clone();
    let d = Descriptor {
        session_id: "s-forged".into(),
        creator: "a".into(),
        members: vec!["a".into(), "b".into()],
        epoch: 1,
        protocol: PROTOCOL_VERSION,
        expires_at: now() + 60_000,
    };
    let key = latchkey_client::seal::SessionKey::generate().unwrap();
    let b_session = b.device_key().session_key_pair().public;
    // Someone (the server, say) signs an invitation in a's name with another key.
    let mallory = DeviceKey::generate().unwrap();
    let forged = latchkey_client::seal::invite(&mallory, "a", &d, &key, "b", &b_session, now()).unwrap();
    let e = b.handle(ChannelEvent::Invitation { invitation: Box::new(forged) }).await.expect_err("refused");
    assert!(matches!(e, TrustedError::Invitation(latchkey_domain::trusted_session::InvitationError::Signature)), "{e}");
    // A well-signed invitation from a device this machine does not trust is refused too.
    let a = f.devices["a"].clone();
    let genuine = latchkey_client::seal::invite(a.device_key(), "a", &d, &key, "b", &b_session, now()).unwrap();
    assert!(b.store().remove_trusted("a").unwrap());
    let e = b.handle(ChannelEvent::Invitation { invitation: Box::new(genuine) }).await.expect_err("refused");
    assert!(matches!(e, TrustedError::NotTrusted(ref d) if d == "a"), "{e}");
    assert!(b.store().session("s-forged").unwrap().is_none(), "no key was kept");
    let _ = std::fs::remove_dir_all(&f.dir);
}
