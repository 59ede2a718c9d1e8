//! Trusted devices and automatic sessions: signed trust, key rotation,
//! invitations used once, ordered relay, and members removed with a new key.

use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey_domain::trust::{self as rules, Missing, PublicKey, PROTOCOL_VERSION};
use latchkey_domain::trusted_session::{
    invitation_bytes, join_statement, Descriptor, Invitation, SessionOptions, SignedInvitation, TargetOutcome,
};
use ring::signature::{Ed25519KeyPair, KeyPair};

/// A device of the checks: its ID and its private key.
struct Dev {
    id: String,
    key: Ed25519KeyPair,
}

impl Dev {
    fn public(&self) -> PublicKey {
        PublicKey::from_bytes(self.key.public_key().as_ref()).unwrap()
    }
    fn sign(&self, msg: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(self.key.sign(msg).as_ref())
    }
}

fn jwk(pk: &PublicKey) -> String {
    serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": pk.to_b64()}).to_string()
}

/// Registers device `dev-{tag}` for `user` with an Ed25519 key made from `seed`,
/// and publishes its session key.
async fn keyed(s: &dyn Store, user: &UserRecord, tag: &str, seed: u8) -> Dev {
    let key = Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap();
    let pk = PublicKey::from_bytes(key.public_key().as_ref()).unwrap();
    let mut g = new_grant(tag, at(0));
    g.requester.device_name = Some(format!("machine {tag}"));
    g.device.public_jwk = Some(jwk(&pk));
    g.device.jkt = Some(format!("jkt-{tag}"));
    s.create_device_grant(g, at(0)).await.unwrap();
    let d = s.decide_device_grant(decision(tag, user, Decision::Approve), at(10)).await.unwrap();
    assert!(matches!(d, DecideResult::Decided(_)), "{d:?}");
    let dev = Dev { id: format!("dev-{tag}"), key };
    publish(s, user, &dev).await;
    dev
}

async fn publish(s: &dyn Store, user: &UserRecord, dev: &Dev) {
    let kem = [7u8; 32];
    let sig = dev.sign(&rules::session_key_statement(&dev.id, PROTOCOL_VERSION, &kem).unwrap());
    let rec = SessionKeyRecord {
        protocol: PROTOCOL_VERSION,
        key: URL_SAFE_NO_PAD.encode(kem),
        signed_by: String::new(),
        signature: sig,
    };
    s.publish_session_key(UserId(&user.id), DeviceId(&dev.id), rec, at(20)).await.unwrap().unwrap();
}

fn statement(user: &UserRecord, from: &Dev, to: &Dev, to_key: &PublicKey) -> NewTrust {
    let issued_at = at(30);
    let msg = rules::trust_statement(&from.id, &to.id, to_key, issued_at).unwrap();
    NewTrust {
        user_id: user.id.clone(),
        truster: from.id.clone(),
        trustee: to.id.clone(),
        trustee_key: to_key.to_b64(),
        issued_at,
        signature: from.sign(&msg),
    }
}

async fn trust_both(s: &dyn Store, user: &UserRecord, a: &Dev, b: &Dev) {
    s.add_trust(statement(user, a, b, &b.public()), at(40)).await.unwrap().unwrap();
    s.add_trust(statement(user, b, a, &a.public()), at(40)).await.unwrap().unwrap();
}

fn ask(user: &UserRecord, creator: &Dev, targets: &[&str], partial: bool) -> SessionAsk {
    SessionAsk {
        user_id: user.id.clone(),
        creator: creator.id.clone(),
        targets: targets.iter().map(|t| t.to_string()).collect(),
        options: SessionOptions { partial, online_only: false, member_limit: 8 },
        session_id: "ts-1".into(),
        ttl_secs: 3600,
    }
}

fn invite(sender: &Dev, d: &Descriptor, to: &str, nonce: &str, now: Timestamp) -> SignedInvitation {
    let invitation = Invitation {
        descriptor: d.clone(),
        sender: sender.id.clone(),
        recipient: to.into(),
        nonce: nonce.into(),
        issued_at: now.as_millis(),
        expires_at: now.plus_secs(300).as_millis(),
        enc: "sealed-elsewhere".into(),
        sealed_key: "sealed-elsewhere".into(),
    };
    let signature = sender.sign(&invitation_bytes(&invitation).unwrap());
    SignedInvitation { invitation, signature }
}

fn join(dev: &Dev, session: &str, epoch: u32, nonce: &str) -> Join {
    Join {
        session_id: session.into(),
        device_id: dev.id.clone(),
        nonce: nonce.into(),
        signature: dev.sign(&join_statement(session, epoch, &dev.id, nonce)),
    }
}

fn relay(dev: &Dev, epoch: u32, seq: i64) -> Relay {
    Relay { session_id: "ts-1".into(), sender: dev.id.clone(), epoch, seq, body: format!("cipher{seq}") }
}

/// A trust statement is stored only when the truster's key signed it over the
/// trustee's current key; mutual trust needs both; removing one ends it, and
/// every change is recorded.
pub async fn trust_is_signed_mutual_and_removable(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    let a = keyed(s, &user, "a", 1).await;
    let b = keyed(s, &user, "b", 2).await;
    let stranger = Dev { id: "dev-x".into(), key: Ed25519KeyPair::from_seed_unchecked(&[9; 32]).unwrap() };

    let mut forged = statement(&user, &a, &b, &b.public());
    forged.signature = stranger.sign(b"something else");
    assert_eq!(s.add_trust(forged, at(50)).await.unwrap(), Err(TrustRefusal::BadSignature));
    let wrong_key = statement(&user, &a, &b, &stranger.public());
    assert_eq!(s.add_trust(wrong_key, at(50)).await.unwrap(), Err(TrustRefusal::WrongKey));
    let itself = statement(&user, &a, &a, &a.public());
    assert_eq!(s.add_trust(itself, at(50)).await.unwrap(), Err(TrustRefusal::SelfTrust));
    assert_eq!(count_kind(s, AuditKind::TrustAdded).await, 0, "refusals store nothing");

    s.add_trust(statement(&user, &a, &b, &b.public()), at(60)).await.unwrap().unwrap();
    let plan = s.plan_trusted_session(ask(&user, &a, &[b.id.as_str()], false), at(70)).await.unwrap();
    assert_eq!(plan.targets[0].outcome, TargetOutcome::NotTrusted(Missing::Theirs));
    assert!(plan.descriptor.is_none());
    s.add_trust(statement(&user, &b, &a, &a.public()), at(80)).await.unwrap().unwrap();
    let plan = s.plan_trusted_session(ask(&user, &a, &[b.id.as_str()], false), at(90)).await.unwrap();
    assert_eq!(plan.targets[0].outcome, TargetOutcome::Invited { online: false });
    let listed = s.trusts(UserId(&user.id)).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|t| t.holds));

    assert!(s
        .remove_trust(UserId(&user.id), DeviceId(&b.id), DeviceId(&a.id), Actor(&user.id), at(100))
        .await
        .unwrap());
    assert!(!s
        .remove_trust(UserId(&user.id), DeviceId(&b.id), DeviceId(&a.id), Actor(&user.id), at(100))
        .await
        .unwrap());
    let plan = s.plan_trusted_session(ask(&user, &a, &[b.id.as_str()], false), at(110)).await.unwrap();
    assert_eq!(plan.targets[0].outcome, TargetOutcome::NotTrusted(Missing::Theirs));
    assert_eq!(count_kind(s, AuditKind::TrustAdded).await, 2);
    assert_eq!(count_kind(s, AuditKind::TrustRemoved).await, 1);
    verify_audit_log(s).await;
}

/// A session is made only from the creator's signed invitations, one per member;
/// each invitation is accepted once with the member's own key; messages flow in
/// each sender's order; a revoked member is taken out at once and the rest must
/// get a new key before anything more is relayed.
pub async fn trusted_session_lifecycle(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    let a = keyed(s, &user, "a", 1).await;
    let b = keyed(s, &user, "b", 2).await;
    let c = keyed(s, &user, "c", 3).await;
    trust_both(s, &user, &a, &b).await;
    trust_both(s, &user, &a, &c).await;
    let u = UserId(&user.id);

    // All or nothing: an unknown target makes nothing; partial makes the rest.
    let strict =
        s.plan_trusted_session(ask(&user, &a, &[b.id.as_str(), "nope", "machine-c"], false), at(100)).await.unwrap();
    assert!(strict.descriptor.is_none());
    let answers: Vec<_> = strict.targets.iter().map(|t| t.outcome).collect();
    assert_eq!(answers[1], TargetOutcome::UnknownDevice);
    let plan =
        s.plan_trusted_session(ask(&user, &a, &[b.id.as_str(), "nope", "machine-c"], true), at(100)).await.unwrap();
    let d = plan.descriptor.clone().unwrap();
    assert_eq!(d.members, vec![a.id.clone(), b.id.clone(), c.id.clone()]);
    assert_eq!(plan.members.len(), 3);
    assert!(plan.members.iter().all(|m| m.session_key.is_some()));

    // Invitations must be the creator's and cover every member.
    let only_b = vec![invite(&a, &d, &b.id, "n-b", at(200))];
    let refused = s.create_trusted_session(u, DeviceId(&a.id), d.clone(), only_b, 8, at(200)).await.unwrap();
    assert!(matches!(refused, Err(SessionRefusal::Invitation(_))), "{refused:?}");
    let forged = vec![invite(&b, &d, &b.id, "n-b", at(200)), invite(&a, &d, &c.id, "n-c", at(200))];
    assert!(s.create_trusted_session(u, DeviceId(&a.id), d.clone(), forged, 8, at(200)).await.unwrap().is_err());
    let invs = vec![invite(&a, &d, &b.id, "n-b", at(200)), invite(&a, &d, &c.id, "n-c", at(200))];
    let made = s.create_trusted_session(u, DeviceId(&a.id), d.clone(), invs, 8, at(200)).await.unwrap().unwrap();
    assert!(matches!(made, SessionMade::Made(..)), "{made:?}");
    assert_eq!(count_kind(s, AuditKind::SessionCreated).await, 1);

    // b sees its invitation on its channel and joins once, with its own key.
    let batch = s.channel_batch(u, DeviceId(&b.id), 0, 100, at(300)).await.unwrap();
    assert_eq!(batch.invitations.len(), 1);
    assert_eq!(batch.invitations[0].invitation.recipient, b.id);
    let mut by_c = join(&c, "ts-1", 1, "n-b");
    by_c.device_id = b.id.clone();
    assert_eq!(s.join_trusted_session(u, by_c, at(300)).await.unwrap().unwrap_err(), SessionRefusal::BadSignature);
    let wrong = join(&c, "ts-1", 1, "n-b");
    assert_eq!(
        s.join_trusted_session(u, wrong, at(300)).await.unwrap().unwrap_err(),
        SessionRefusal::UnknownInvitation
    );
    s.join_trusted_session(u, join(&b, "ts-1", 1, "n-b"), at(300)).await.unwrap().unwrap();
    let replay = s.join_trusted_session(u, join(&b, "ts-1", 1, "n-b"), at(310)).await.unwrap();
    assert_eq!(replay.unwrap_err(), SessionRefusal::InvitationUsed);
    s.join_trusted_session(u, join(&c, "ts-1", 1, "n-c"), at(320)).await.unwrap().unwrap();

    // Per-sender order, and only for joined members at the current key.
    let first = s.relay_message(u, relay(&a, 1, 1), at(400)).await.unwrap().unwrap();
    assert_eq!(s.relay_message(u, relay(&a, 1, 3), at(400)).await.unwrap(), Err(SessionRefusal::OutOfOrder(2)));
    assert_eq!(s.relay_message(u, relay(&a, 2, 2), at(400)).await.unwrap(), Err(SessionRefusal::WrongEpoch(1)));
    s.relay_message(u, relay(&b, 1, 1), at(410)).await.unwrap().unwrap();
    let seen = s.channel_batch(u, DeviceId(&c.id), 0, 100, at(420)).await.unwrap();
    let messages: Vec<_> = seen.entries.iter().filter_map(|e| e.message.clone()).collect();
    assert_eq!(messages, vec![(a.id.clone(), 1, "cipher1".into()), (b.id.clone(), 1, "cipher1".into())]);
    assert!(seen.entries.iter().any(|e| e.pos == first));
    assert!(seen.invitations.is_empty(), "used invitations are not delivered again");

    // Revoking c takes it out at once; nothing flows until a new key is issued.
    s.revoke_device(DeviceId(&c.id), Some(UserId(&user.id)), Actor(&user.id), at(500)).await.unwrap();
    let now_s = s.trusted_session("ts-1", DeviceId(&a.id)).await.unwrap().unwrap();
    assert!(now_s.rekey_needed);
    assert_eq!(now_s.epoch, 2);
    assert_eq!(now_s.current_members(), vec![a.id.clone(), b.id.clone()]);
    assert_eq!(s.relay_message(u, relay(&a, 2, 1), at(510)).await.unwrap(), Err(SessionRefusal::RekeyNeeded));
    assert_eq!(count_kind(s, AuditKind::SessionMemberRemoved).await, 1);
    let d2 = now_s.descriptor();
    let with_c = vec![invite(&a, &d2, &b.id, "n2-b", at(520)), invite(&a, &d2, &c.id, "n2-c", at(520))];
    let issue =
        |invitations| Issue { session_id: "ts-1".into(), sender: a.id.clone(), descriptor: d2.clone(), invitations };
    assert!(s.issue_invitations(u, issue(with_c), at(520)).await.unwrap().is_err(), "no key for a removed member");
    let reused = vec![invite(&a, &d2, &b.id, "n-b", at(520))];
    assert!(s.issue_invitations(u, issue(reused), at(520)).await.unwrap().is_err(), "a nonce works once, ever");
    s.issue_invitations(u, issue(vec![invite(&a, &d2, &b.id, "n2-b", at(530))]), at(530)).await.unwrap().unwrap();
    s.join_trusted_session(u, join(&b, "ts-1", 2, "n2-b"), at(540)).await.unwrap().unwrap();
    s.relay_message(u, relay(&a, 2, 2), at(550)).await.unwrap().unwrap();
    let c_sees = s.channel_batch(u, DeviceId(&c.id), 0, 100, at(560)).await.unwrap();
    assert!(
        c_sees.entries.iter().all(|e| e.message.is_none() || e.epoch == 1),
        "a removed member sees nothing sent under the new key"
    );
    assert!(c_sees.entries.iter().any(|e| e.event == Some(("member_removed".into(), Some(c.id.clone())))));

    // Leaving down to one member ends the session.
    s.leave_trusted_session(u, "ts-1", DeviceId(&b.id), at(600)).await.unwrap().unwrap();
    let ended = s.trusted_session("ts-1", DeviceId(&a.id)).await.unwrap().unwrap();
    assert!(ended.closed_at.is_some());
    assert_eq!(s.relay_message(u, relay(&a, 2, 3), at(610)).await.unwrap(), Err(SessionRefusal::Ended));
    verify_audit_log(s).await;
}

/// A key replaced with the old key's signature keeps its trust; one replaced
/// without it loses trust (and its sessions) until trust is signed again.
pub async fn key_rotation_keeps_trust_only_with_a_chain(store: Arc<dyn Store>) {
    let s = &*store;
    let user = setup(s).await;
    let a = keyed(s, &user, "a", 1).await;
    let b = keyed(s, &user, "b", 2).await;
    trust_both(s, &user, &a, &b).await;
    let rotate = |dev: &Dev, new: &Dev, chained: bool, family: &str| {
        let (old, next) = (dev.public(), new.public());
        RotateKey {
            user_id: user.id.clone(),
            device_id: dev.id.clone(),
            new_jwk: jwk(&next),
            new_jkt: format!("jkt-new-{family}"),
            new_key: next.to_b64(),
            chain_signature: chained.then(|| dev.sign(&rules::rotation_statement(&dev.id, &old, &next).unwrap())),
            client_id: "cli".into(),
            scope: "openid".into(),
            mint: mint(family),
        }
    };
    let b2 = Dev { id: b.id.clone(), key: Ed25519KeyPair::from_seed_unchecked(&[22; 32]).unwrap() };
    let mut bad = rotate(&b, &b2, true, "f1");
    bad.chain_signature = Some(a.sign(b"not the rotation"));
    assert_eq!(s.rotate_device_key(bad, at(100)).await.unwrap().unwrap_err(), TrustRefusal::BadSignature);
    s.rotate_device_key(rotate(&b, &b2, true, "f2"), at(110)).await.unwrap().unwrap();
    publish(s, &user, &b2).await;
    let plan = s.plan_trusted_session(ask(&user, &a, &[b.id.as_str()], false), at(120)).await.unwrap();
    assert_eq!(plan.targets[0].outcome, TargetOutcome::Invited { online: false }, "trust carried over");

    let b3 = Dev { id: b.id.clone(), key: Ed25519KeyPair::from_seed_unchecked(&[33; 32]).unwrap() };
    s.rotate_device_key(rotate(&b2, &b3, false, "f3"), at(130)).await.unwrap().unwrap();
    publish(s, &user, &b3).await;
    let plan = s.plan_trusted_session(ask(&user, &a, &[b.id.as_str()], false), at(140)).await.unwrap();
    assert_eq!(plan.targets[0].outcome, TargetOutcome::NotTrusted(Missing::Both), "suspended without a chain");
    assert!(s.trusts(UserId(&user.id)).await.unwrap().iter().all(|t| !t.holds));
    trust_both(s, &user, &a, &b3).await;
    let plan = s.plan_trusted_session(ask(&user, &a, &[b.id.as_str()], false), at(150)).await.unwrap();
    assert_eq!(plan.targets[0].outcome, TargetOutcome::Invited { online: false }, "trust re-added");
    assert_eq!(count_kind(s, AuditKind::DeviceKeyRotated).await, 2);
    verify_audit_log(s).await;
}

/// Devices `a` and `b` that trust each other, in session `ts-1` made by `a` at 200 (b invited).
async fn two_in_a_session(s: &dyn Store) -> (UserRecord, Dev, Dev, Descriptor) {
    let user = setup(s).await;
    let a = keyed(s, &user, "a", 1).await;
    let b = keyed(s, &user, "b", 2).await;
    trust_both(s, &user, &a, &b).await;
    let u = UserId(&user.id);
    let d = s.plan_trusted_session(ask(&user, &a, &[b.id.as_str()], false), at(100)).await.unwrap().descriptor.unwrap();
    let invs = vec![invite(&a, &d, &b.id, "n-b", at(200))];
    s.create_trusted_session(u, DeviceId(&a.id), d.clone(), invs, 8, at(200)).await.unwrap().unwrap();
    (user, a, b, d)
}

/// A session past its end is closed by housekeeping, recorded as closed by
/// `system`, and told to its members; nothing more is relayed in it.
pub async fn expired_session_is_closed_and_recorded(store: Arc<dyn Store>) {
    let s = &*store;
    let (user, a, b, d) = two_in_a_session(s).await;
    let u = UserId(&user.id);
    let end = Timestamp::from_millis(d.expires_at);
    s.sweep(end.plus_millis(-1)).await.unwrap();
    assert_eq!(count_kind(s, AuditKind::SessionClosed).await, 0, "not before its end");
    s.sweep(end).await.unwrap();
    let closed = s.trusted_session("ts-1", DeviceId(&b.id)).await.unwrap().unwrap();
    assert_eq!(closed.closed_at, Some(end));
    assert_last_event(s, &events::session_closed("system", "ts-1"), end).await;
    let told = s.channel_batch(u, DeviceId(&b.id), 0, 100, end).await.unwrap();
    assert!(told.entries.iter().any(|e| e.event == Some(("closed".into(), None))));
    assert_eq!(s.relay_message(u, relay(&a, 1, 1), end).await.unwrap(), Err(SessionRefusal::Ended));
    s.sweep(end.plus_secs(2 * 86_400)).await.unwrap();
    assert!(s.trusted_session("ts-1", DeviceId(&b.id)).await.unwrap().is_none(), "deleted a day after");
    verify_audit_log(s).await;
}

/// A channel skips what its device may never see (other sessions, its own
/// messages) for good, but not what it may see once it joins: a message sent
/// before a member joined is its to read after.
pub async fn channel_cursor_skips_only_what_stays_hidden(store: Arc<dyn Store>) {
    let s = &*store;
    let (user, a, b, _) = two_in_a_session(s).await;
    let u = UserId(&user.id);
    let early = s.relay_message(u, relay(&a, 1, 1), at(300)).await.unwrap().unwrap();
    let before = s.channel_batch(u, DeviceId(&b.id), 0, 100, at(310)).await.unwrap();
    assert!(before.entries.iter().all(|e| e.message.is_none()), "not b's to read before it joins");
    assert!(before.seen_up_to < early, "but not skipped either");
    s.join_trusted_session(u, join(&b, "ts-1", 1, "n-b"), at(320)).await.unwrap().unwrap();
    let after = s.channel_batch(u, DeviceId(&b.id), before.seen_up_to, 100, at(330)).await.unwrap();
    let read: Vec<_> = after.entries.iter().filter_map(|e| e.message.clone()).collect();
    assert_eq!(read, vec![(a.id.clone(), 1, "cipher1".to_string())]);
    // The creator's own message is never its to read: its cursor moves past it.
    let own = s.channel_batch(u, DeviceId(&a.id), 0, 100, at(340)).await.unwrap();
    assert!(own.entries.iter().all(|e| e.message.is_none()));
    assert!(own.seen_up_to >= early);
}
