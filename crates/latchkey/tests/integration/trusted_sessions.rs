//! Trusted devices and automatic sessions, end to end: several real library
//! clients, each a registered `latchkey-cli` device with its own key, against
//! the real server. Trust is signed on the devices, session keys are sealed
//! on them, and the server only checks and relays.

use crate::backend_tests;
use crate::support::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey_client::channel::Channel;
use latchkey_client::dpop::DeviceKey;
use latchkey_client::trusted::{TrustedDevice, Update};
use latchkey_client::{Auth, Client};
use latchkey_proto::paths;
use latchkey_proto::trust::{SessionRequest, TargetResult, TrustRequest};
use latchkey_store::{Actor, DeviceId, UserId};
use std::sync::Arc;
use std::time::Duration;

/// One machine: a device of the user signed in as `session`, logged in with its own key.
struct Machine {
    dev: TrustedDevice,
    key: Arc<DeviceKey>,
    token: String,
}

impl Machine {
    fn id(&self) -> &str {
        self.dev.device_id()
    }
}

async fn machine(app: &TestApp, session: &str, name: &str, publish: bool) -> Machine {
    let key = Arc::new(DeviceKey::generate().expect("key"));
    let client = Client::new(&app.url).expect("client").with_device_key(key.clone());
    let auth = client.device_authorization(&cli(), "openid", Some(name)).await.expect("authorize");
    app.client.decide_device_login(session, &auth.user_code, true).await.expect("approve");
    let tokens = client.poll_token(&cli(), &auth.device_code).await.expect("tokens");
    let me = client.me(Auth::Access(&tokens.access_token)).await.expect("me");
    let id = me.device.expect("a device").id;
    let dir = std::env::temp_dir().join(format!("latchkey-trusted-{}", uuid::Uuid::new_v4()));
    let dev = TrustedDevice::new(client, key.clone(), id, tokens.access_token.clone(), dir)
        .with_rekey_step(Duration::from_millis(200));
    if publish {
        dev.publish_session_key().await.expect("publish session key");
    }
    Machine { dev, key, token: tokens.access_token }
}

async fn trust(from: &Machine, to: &Machine) {
    let keys = from.dev.device_keys(to.id()).await.expect("keys");
    from.dev.trust(&keys).await.expect("trust");
}

async fn trust_both(a: &Machine, b: &Machine) {
    trust(a, b).await;
    trust(b, a).await;
}

fn ask(targets: &[&str]) -> SessionRequest {
    SessionRequest { targets: targets.iter().map(|t| t.to_string()).collect(), ..SessionRequest::default() }
}

/// Pumps `m`'s channel until `want` matches an update (each one handled as the library does).
async fn until(m: &Machine, ch: &mut Channel, what: &str, mut want: impl FnMut(&Update) -> bool) -> Update {
    let found = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match m.dev.next_update(ch).await {
                Some(Ok(u)) if want(&u) => return u,
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("{what}: {e}"),
                None => panic!("{what}: the channel ended"),
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("{what}: timed out"))
}

fn message(u: &Update) -> Option<String> {
    match u {
        Update::Message(r) => Some(String::from_utf8_lossy(&r.plaintext).into_owned()),
        _ => None,
    }
}

fn joined(u: &Update, session: &str) -> bool {
    matches!(u, Update::Joined { session_id, .. } if session_id == session)
}

/// A raw call as device `m`, with a DPoP proof: for bodies the library would never send.
async fn raw(
    app: &TestApp,
    m: &Machine,
    method: &str,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let url = format!("{}{path}", app.url);
    let proof = m.key.proof(method, &url, Some(&m.token)).expect("proof");
    let req = reqwest::Client::new()
        .request(method.parse().expect("method"), &url)
        .header("Authorization", format!("DPoP {}", m.token))
        .header("DPoP", proof)
        .json(&body);
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

fn outcome(t: &[TargetResult], target: &str) -> (String, Option<String>) {
    let r = t.iter().find(|r| r.target == target).unwrap_or_else(|| panic!("no answer for {target}: {t:?}"));
    (r.outcome.clone(), r.missing.clone())
}

/// Three devices that trust the creator open a session without a secret typed:
/// each joins from its channel, messages reach every other member decrypted,
/// an invitation works once, oversized messages are refused, and no session
/// key is ever stored on the server.
async fn three_devices_open_a_session_and_talk(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in("alice").await;
    let a = machine(&app, &session, "desk", true).await;
    let b = machine(&app, &session, "laptop b", true).await;
    let c = machine(&app, &session, "laptop c", true).await;
    trust_both(&a, &b).await;
    trust_both(&a, &c).await;
    trust_both(&b, &c).await;
    let (mut ch_a, mut ch_b, mut ch_c) =
        (a.dev.channel(0).await.expect("a"), b.dev.channel(0).await.expect("b"), c.dev.channel(0).await.expect("c"));
    for (m, ch) in [(&a, &mut ch_a), (&b, &mut ch_b), (&c, &mut ch_c)] {
        until(m, ch, "ready", |u| matches!(u, Update::Ready { .. })).await;
    }

    // By slug and by ID.
    let made = a.dev.create_session(&ask(&["laptop-b", c.id()])).await.expect("create");
    let s = made.session.expect("made");
    assert_eq!(
        (outcome(&made.targets, "laptop-b").0.as_str(), outcome(&made.targets, c.id()).0.as_str()),
        ("invited", "invited")
    );
    let mut members: Vec<&str> = vec![a.id(), b.id(), c.id()];
    members.sort();
    assert_eq!(s.members.iter().map(|m| m.device_id.as_str()).collect::<Vec<_>>(), members);
    until(&b, &mut ch_b, "b joins", |u| joined(u, &s.id)).await;
    until(&c, &mut ch_c, "c joins", |u| joined(u, &s.id)).await;

    a.dev.send(&s.id, b"hello from the desk").await.expect("a sends");
    assert_eq!(
        message(&until(&b, &mut ch_b, "b reads", |u| message(u).is_some()).await).as_deref(),
        Some("hello from the desk")
    );
    assert_eq!(
        message(&until(&c, &mut ch_c, "c reads", |u| message(u).is_some()).await).as_deref(),
        Some("hello from the desk")
    );
    b.dev.send(&s.id, b"laptop here").await.expect("b sends");
    assert_eq!(
        message(&until(&a, &mut ch_a, "a reads", |u| message(u).is_some()).await).as_deref(),
        Some("laptop here")
    );
    assert_eq!(
        message(&until(&c, &mut ch_c, "c reads b", |u| message(u).is_some()).await).as_deref(),
        Some("laptop here")
    );

    // A used invitation cannot be replayed.
    let info = a.dev.session(&s.id).await.expect("info");
    assert!(info.members.iter().all(|m| m.status == "joined"), "{info:?}");
    let join = serde_json::json!({"nonce": "no-such-nonce", "signature": "AAAA"});
    let (status, body) = raw(&app, &b, "POST", &paths::with_id(paths::TRUSTED_SESSION_JOIN, &s.id), join).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));

    // Too large for the relay: refused with 413, nothing relayed.
    let huge = URL_SAFE_NO_PAD.encode(vec![7u8; 70 * 1024]);
    let msg = serde_json::json!({"epoch": 1, "seq": 2, "body": huge});
    let (status, _) = raw(&app, &a, "POST", &paths::with_id(paths::TRUSTED_SESSION_MESSAGES, &s.id), msg).await;
    assert_eq!(status, 413);

    // The server holds ciphertext and sealed keys only.
    let held = a.dev.store().session(&s.id).expect("store").expect("a holds the session");
    let key_b64 = held.keys.get(&1).expect("epoch 1 key").clone();
    let key = URL_SAFE_NO_PAD.decode(&key_b64).expect("key");
    let dump = app.database_text().await;
    assert!(dump.contains(&s.id), "the dump covers the sessions table");
    for form in [key_b64.clone(), hex::encode(&key), base64::engine::general_purpose::STANDARD.encode(&key)] {
        assert!(!dump.contains(&form), "the session key is stored on the server as {form}");
    }
    assert!(!dump.contains("hello from the desk"), "messages are stored only encrypted");
}

/// Every target gets exactly one answer, and the same answer for the same facts.
async fn every_target_gets_its_answer(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.session_member_limit = 3).await;
    let session = app.signed_in("alice").await;
    let a = machine(&app, &session, "creator", true).await;
    let b = machine(&app, &session, "trusted", true).await;
    let c = machine(&app, &session, "one sided", true).await;
    let d = machine(&app, &session, "revoked", true).await;
    let e = machine(&app, &session, "old client", false).await;
    let f = machine(&app, &session, "offline", true).await;
    let g = machine(&app, &session, "twice", true).await;
    trust_both(&a, &b).await;
    trust(&a, &c).await;
    trust_both(&a, &d).await;
    trust_both(&a, &e).await;
    trust_both(&a, &f).await;
    trust_both(&a, &g).await;
    app.client.revoke_device(&session, d.id()).await.expect("revoke d");
    let _b_online = b.dev.channel(0).await.expect("b online");
    let _g_here = g.dev.channel(0).await.expect("g here");
    let _g_there = g.dev.channel(0).await.expect("g there");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let all = [b.id(), c.id(), d.id(), e.id(), "no-such-device", a.id(), g.id()];
    let req = SessionRequest { partial: true, ..ask(&all) };
    let plan = a.dev.plan(&req).await.expect("plan");
    let answers: Vec<(String, Option<String>)> = all.iter().map(|t| outcome(&plan.targets, t)).collect();
    let want = [
        ("invited", None),
        ("not_trusted", Some("target")),
        ("revoked", None),
        ("incompatible", None),
        ("unknown_device", None),
        ("creator_itself", None),
        ("ambiguous", None),
    ];
    let want: Vec<(String, Option<String>)> =
        want.iter().map(|(o, m)| (o.to_string(), m.map(str::to_string))).collect();
    assert_eq!(answers, want);
    assert_eq!(a.dev.plan(&req).await.expect("again").targets, plan.targets, "deterministic");
    assert!(plan.create, "partial: made with the one that passed");

    // All or nothing (the default): nothing is made, every answer is given.
    let strict = a.dev.create_session(&ask(&all)).await.expect("strict");
    assert!(strict.session.is_none());
    assert_eq!(strict.targets.len(), all.len());
    assert!(a.dev.sessions().await.expect("list").is_empty(), "nothing half-made");

    let online = SessionRequest { online_only: true, ..ask(&[f.id()]) };
    assert_eq!(outcome(&a.dev.plan(&online).await.expect("online").targets, f.id()).0, "offline");
    let later = a.dev.plan(&ask(&[f.id()])).await.expect("later");
    assert_eq!(outcome(&later.targets, f.id()).0, "invited_offline");
    // The limit counts the creator: two more fit, the third does not.
    let h = machine(&app, &session, "one too many", true).await;
    trust_both(&a, &h).await;
    let crowd = a.dev.plan(&ask(&[b.id(), f.id(), h.id()])).await.expect("crowd");
    let crowd: Vec<String> = [b.id(), f.id(), h.id()].iter().map(|t| outcome(&crowd.targets, t).0).collect();
    assert_eq!(crowd, ["invited", "invited_offline", "over_limit"]);

    // Trust that was not signed by the caller's key, or over another key, is refused.
    let kb = a.dev.device_keys(b.id()).await.expect("keys");
    let forged = TrustRequest {
        trustee: b.id().into(),
        trustee_key: kb.public_key.clone(),
        issued_at_ms: 1,
        signature: URL_SAFE_NO_PAD.encode(b.key.sign(b"not a trust statement")),
    };
    let body = serde_json::to_value(&forged).expect("json");
    let (status, err) = raw(&app, &c, "POST", paths::TRUSTS, body).await;
    assert_eq!((status, err["error"].as_str()), (400, Some("invalid_signature")));
    let other_key = TrustRequest { trustee_key: c.key.public_key().to_b64(), ..forged };
    let (status, err) = raw(&app, &c, "POST", paths::TRUSTS, serde_json::to_value(&other_key).expect("json")).await;
    assert_eq!((status, err["error"].as_str()), (409, Some("wrong_key")));
    // A browser session cannot act as a device here.
    let list = reqwest::Client::new()
        .post(format!("{}{}", app.url, paths::TRUSTED_SESSION_PLAN))
        .bearer_auth(&session)
        .json(&ask(&[b.id()]))
        .send()
        .await
        .expect("send");
    assert_eq!(list.status().as_u16(), 403);
}

/// A member revoked during a session is out at once; the others rekey without
/// it (the creator is offline, so another member does) and it cannot read what
/// follows. The creator, back online, gets the new key and reads on.
async fn a_revoked_member_is_removed_and_reads_nothing_after(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in("alice").await;
    let a = machine(&app, &session, "desk", true).await;
    let b = machine(&app, &session, "laptop", true).await;
    let c = machine(&app, &session, "stolen", true).await;
    trust_both(&a, &b).await;
    trust_both(&a, &c).await;
    trust_both(&b, &c).await;
    let mut ch_a = a.dev.channel(0).await.expect("a");
    let (mut ch_b, mut ch_c) = (b.dev.channel(0).await.expect("b"), c.dev.channel(0).await.expect("c"));
    let s = a.dev.create_session(&ask(&[b.id(), c.id()])).await.expect("create").session.expect("made");
    until(&b, &mut ch_b, "b joins", |u| joined(u, &s.id)).await;
    until(&c, &mut ch_c, "c joins", |u| joined(u, &s.id)).await;
    until(&a, &mut ch_a, "a ready", |u| matches!(u, Update::Ready { .. })).await;
    let cursor_a = ch_a.last_id();
    drop(ch_a); // the creator goes offline

    app.store
        .revoke_device(DeviceId(c.id()), Some(UserId(&app_user(&app).await)), Actor("test"), now())
        .await
        .expect("revoke");
    // c's channel ends: its token no longer works.
    let ended = tokio::time::timeout(Duration::from_secs(10), async { while ch_c.next().await.is_some() {} }).await;
    assert!(ended.is_ok(), "the revoked device's channel ends");
    // b holds the key and rekeys, though the creator is away.
    until(
        &b,
        &mut ch_b,
        "b rekeys",
        |u| matches!(u, Update::Session { event, issued: true, .. } if event == "rekey_needed"),
    )
    .await;
    let info = b.dev.session(&s.id).await.expect("info");
    assert_eq!(info.epoch, 2);
    assert!(!info.rekey_needed);
    assert!(info.members.iter().any(|m| m.device_id == c.id() && m.status == "removed"));
    b.dev.send(&s.id, b"after the theft").await.expect("b sends under the new key");

    // c cannot get the new key: its channel is refused, and it holds epoch 1 only.
    assert!(c.dev.channel(0).await.is_err());
    let held = c.dev.store().session(&s.id).expect("store");
    assert!(held.is_none_or(|h| !h.keys.contains_key(&2)));

    // The creator comes back, gets its invitation to the new key, and reads on.
    let mut ch_a = a.dev.channel(cursor_a).await.expect("a again");
    until(&a, &mut ch_a, "a rejoins", |u| matches!(u, Update::Joined { epoch: 2, .. })).await;
    assert_eq!(
        message(&until(&a, &mut ch_a, "a reads", |u| message(u).is_some()).await).as_deref(),
        Some("after the theft")
    );
}

/// A key replaced with a signed chain keeps its trust and its sessions; one
/// replaced without loses both until trust is signed again.
async fn key_rotation_with_and_without_the_chain(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in("alice").await;
    let a = machine(&app, &session, "desk", true).await;
    let mut b = machine(&app, &session, "laptop", true).await;
    trust_both(&a, &b).await;

    let rotated = b.dev.rotate_key(true).await.expect("chained rotation");
    b.dev.adopt(&rotated);
    b.key = rotated.key.clone();
    b.token = rotated.tokens.access_token.clone();
    b.dev.publish_session_key().await.expect("publish the new session key");
    let plan = a.dev.plan(&ask(&[b.id()])).await.expect("plan");
    assert_eq!(outcome(&plan.targets, b.id()).0, "invited_offline", "trust carried over the chain");
    let made = a.dev.create_session(&ask(&[b.id()])).await.expect("create");
    let s = made.session.expect("made with the new key");

    let rotated = b.dev.rotate_key(false).await.expect("unchained rotation");
    b.dev.adopt(&rotated);
    b.dev.publish_session_key().await.expect("publish");
    let plan = a.dev.plan(&ask(&[b.id()])).await.expect("plan");
    assert_eq!(outcome(&plan.targets, b.id()), ("not_trusted".into(), Some("both".into())), "suspended");
    let ended = a.dev.session(&s.id).await.expect("info");
    assert_eq!(ended.status, "closed", "b's unchained key took it out, leaving the creator alone");
    assert!(a.dev.trusts().await.expect("trusts").trusts.iter().all(|t| !t.holds));
    // The old tokens stopped at the rotation.
    let (status, _) = raw(&app, &b, "GET", paths::TRUSTS, serde_json::Value::Null).await;
    assert_eq!(status, 401);

    // Trust is added again (a checks the new fingerprint), and works.
    let keys = a.dev.device_keys(b.id()).await.expect("keys");
    a.dev.store().remove_trusted(b.id()).expect("forget the old key");
    a.dev.trust(&keys).await.expect("a trusts the new key");
    let keys = b.dev.device_keys(a.id()).await.expect("keys");
    b.dev.trust(&keys).await.expect("b trusts a again");
    let plan = a.dev.plan(&ask(&[b.id()])).await.expect("plan");
    assert_eq!(outcome(&plan.targets, b.id()).0, "invited_offline");
}

/// A member that drops between receiving and accepting its invitation gets it
/// again on its next channel; one whose invitation lapsed while it was away is
/// sent a fresh one by a member holding the key.
async fn invitations_survive_a_dropped_join_and_a_long_absence(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in("alice").await;
    let a = machine(&app, &session, "desk", true).await;
    let b = machine(&app, &session, "laptop", true).await;
    let c = machine(&app, &session, "away", true).await;
    trust_both(&a, &b).await;
    trust_both(&a, &c).await;
    let s = a.dev.create_session(&ask(&[b.id(), c.id()])).await.expect("create").session.expect("made");

    // b sees its invitation, then disconnects before joining.
    let mut ch_b = b.dev.channel(0).await.expect("b");
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(Ok(latchkey_proto::trust::ChannelEvent::Invitation { .. })) = ch_b.next().await {
                return;
            }
        }
    })
    .await;
    assert!(seen.is_ok(), "b's invitation arrives on its channel");
    drop(ch_b);
    let mut ch_b = b.dev.channel(0).await.expect("b again");
    until(&b, &mut ch_b, "b joins on reconnect", |u| joined(u, &s.id)).await;

    // c's invitation lapses while it is away; the creator re-invites it when it shows up.
    app.raw_sql("UPDATE session_invitations SET expires_at = 0 WHERE used_at IS NULL").await;
    let mut ch_a = a.dev.channel(0).await.expect("a");
    until(&a, &mut ch_a, "a ready", |u| matches!(u, Update::Ready { .. })).await;
    let mut ch_c = c.dev.channel(0).await.expect("c");
    until(
        &a,
        &mut ch_a,
        "a re-invites",
        |u| matches!(u, Update::Session { event, issued: true, .. } if event == "invitation_needed"),
    )
    .await;
    until(&c, &mut ch_c, "c joins late", |u| joined(u, &s.id)).await;
    b.dev.send(&s.id, b"everyone here").await.expect("send");
    assert_eq!(
        message(&until(&c, &mut ch_c, "c reads", |u| message(u).is_some()).await).as_deref(),
        Some("everyone here")
    );
}

/// The Devices page lists the trust between the user's devices, with each key's
/// fingerprint, and removes one at once (adding trust happens only on a device).
async fn devices_page_shows_and_removes_trust(backend: Backend) {
    use crate::web_pages::{get, post, sign_in};
    let app = spawn_app(backend).await;
    let session = app.signed_in("alice").await;
    let a = machine(&app, &session, "desk", true).await;
    let b = machine(&app, &session, "laptop", true).await;
    trust_both(&a, &b).await;
    let web = browser();
    let csrf = sign_in(&app, &web, "alice").await;
    let page = get(&web, &format!("{}/devices", app.url)).await;
    assert_eq!(page.status, 200);
    let b_fp = a.dev.device_keys(b.id()).await.expect("keys").fingerprint;
    assert!(page.html.contains(&b_fp), "the trusted key's fingerprint is shown");
    assert_eq!(page.html.matches("in effect").count(), 2, "both directions");
    let form = format!("{}/devices/{}/untrust/{}", app.url, a.id(), b.id());
    let stale = post(&web, &form, &[("csrf", "stale")]).await;
    assert_eq!(stale.status, 403, "a forged form changes nothing");
    let done = post(&web, &form, &[("csrf", &csrf)]).await;
    assert_eq!(done.status, 303);
    let page = get(&web, &format!("{}/devices?done=untrusted", app.url)).await;
    assert!(page.html.contains("Trust removed"));
    assert_eq!(page.html.matches("in effect").count(), 1);
    let plan = a.dev.plan(&ask(&[b.id()])).await.expect("plan");
    assert_eq!(outcome(&plan.targets, b.id()), ("not_trusted".into(), Some("creator".into())));
}

/// The ID of the test user `alice`.
async fn app_user(app: &TestApp) -> String {
    app.store.user_by_name("alice").await.expect("lookup").expect("alice").id
}

backend_tests!(
    three_devices_open_a_session_and_talk,
    every_target_gets_its_answer,
    a_revoked_member_is_removed_and_reads_nothing_after,
    key_rotation_with_and_without_the_chain,
    invitations_survive_a_dropped_join_and_a_long_absence,
    devices_page_shows_and_removes_trust,
);
