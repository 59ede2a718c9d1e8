//! Automatic sessions between trusted devices: who may be invited, and the
//! exact bytes of invitations and joins.
//!
//! The creator asks for targets; [`plan_targets`] gives each exactly one
//! answer, always the same for the same facts. The creator then makes the
//! session key on its own machine, seals it to each member with HPKE and
//! signs one [`Invitation`] per member. The server checks the invitations
//! ([`check_issue`]) and relays them; each member checks its own
//! ([`check_invitation`]) and proves its key when it joins
//! ([`join_statement`]). The server never sees the session key.

use crate::time::Timestamp;
use crate::trust::{Missing, PublicKey, TrustError, PROTOCOL_VERSION};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use thiserror::Error;

/// Members a session may have unless the operator says otherwise (the creator counts).
pub const DEFAULT_MEMBER_LIMIT: usize = 8;
/// The longest an invitation may be valid.
pub const MAX_INVITATION_SECS: i64 = 600;
/// How long the client library makes its invitations valid.
pub const INVITATION_SECS: i64 = 300;
/// How long a session lives unless asked otherwise.
pub const DEFAULT_SESSION_SECS: i64 = 3600;
/// The longest a session may live.
pub const MAX_SESSION_SECS: i64 = 86_400;
/// The largest relayed message body, in bytes (ciphertext as sent).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// How many relayed messages a session keeps for members that reconnect.
pub const BACKLOG: i64 = 256;
/// The `info` HPKE is set up with when sealing a session key.
pub const HPKE_INFO: &[u8] = b"latchkey session key v1";

/// The answer for one target of a new session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetOutcome {
    /// A member: invited, and told at once if `online`, else when it connects.
    Invited {
        /// Whether it holds its channel now.
        online: bool,
    },
    /// No active or revoked device of this user has this ID or slug.
    UnknownDevice,
    /// A slug that names more than one device; use the ID.
    AmbiguousName,
    /// The creator named itself; it is a member anyway.
    CreatorItself,
    /// The device was revoked.
    Revoked,
    /// The device has not published a session key for this protocol version.
    Incompatible,
    /// Trust is missing on one side or both.
    NotTrusted(Missing),
    /// The same device holds its channel from two places at once.
    Ambiguous,
    /// Offline, and the creator asked for online members only.
    Offline,
    /// More members than the limit.
    OverLimit,
}

impl TargetOutcome {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetOutcome::Invited { online: true } => "invited",
            TargetOutcome::Invited { online: false } => "invited_offline",
            TargetOutcome::UnknownDevice => "unknown_device",
            TargetOutcome::AmbiguousName => "ambiguous_name",
            TargetOutcome::CreatorItself => "creator_itself",
            TargetOutcome::Revoked => "revoked",
            TargetOutcome::Incompatible => "incompatible",
            TargetOutcome::NotTrusted(_) => "not_trusted",
            TargetOutcome::Ambiguous => "ambiguous",
            TargetOutcome::Offline => "offline",
            TargetOutcome::OverLimit => "over_limit",
        }
    }

    /// Whether the target becomes a member.
    pub fn is_member(self) -> bool {
        matches!(self, TargetOutcome::Invited { .. })
    }
}

/// What the server knows about one named target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// No device of the user has this ID or slug.
    Unknown,
    /// More than one device has this slug.
    AmbiguousName,
    /// One device.
    Device(TargetFacts),
}

/// The facts that decide one device's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetFacts {
    /// Its stable ID.
    pub id: String,
    /// Not revoked.
    pub active: bool,
    /// Published a session key for [`PROTOCOL_VERSION`].
    pub compatible: bool,
    /// Mutual trust with the creator.
    pub trust: Result<(), Missing>,
    /// Channels it holds now.
    pub connections: u32,
}

/// How the creator wants its session made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionOptions {
    /// Make the session with the targets that pass, instead of none.
    pub partial: bool,
    /// Refuse targets that are not online now.
    pub online_only: bool,
    /// Most members, the creator included.
    pub member_limit: usize,
}

/// One answer per target, in the order asked, and who the members are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetPlan {
    /// `(target as named, device ID if resolved, answer)`.
    pub outcomes: Vec<(String, Option<String>, TargetOutcome)>,
    /// Whether the session is made.
    pub create: bool,
    /// Members, sorted, the creator included (empty when not made).
    pub members: Vec<String>,
}

/// Decides every target of a new session, in the order named; the same
/// device named twice gets the same answer twice and counts once.
pub fn plan_targets(creator: &str, targets: &[(String, Resolved)], options: SessionOptions) -> TargetPlan {
    let mut members: BTreeSet<String> = BTreeSet::new();
    members.insert(creator.to_string());
    let mut outcomes = Vec::with_capacity(targets.len());
    for (named, resolved) in targets {
        let (id, outcome) = match resolved {
            Resolved::Unknown => (None, TargetOutcome::UnknownDevice),
            Resolved::AmbiguousName => (None, TargetOutcome::AmbiguousName),
            Resolved::Device(f) => (Some(f.id.clone()), device_outcome(creator, f, options, &members)),
        };
        if let (Some(id), true) = (&id, outcome.is_member()) {
            members.insert(id.clone());
        }
        outcomes.push((named.clone(), id, outcome));
    }
    let refused = outcomes.iter().any(|(_, _, o)| !o.is_member() && *o != TargetOutcome::CreatorItself);
    let create = members.len() > 1 && (options.partial || !refused);
    TargetPlan { outcomes, create, members: if create { members.into_iter().collect() } else { Vec::new() } }
}

fn device_outcome(
    creator: &str,
    f: &TargetFacts,
    options: SessionOptions,
    members: &BTreeSet<String>,
) -> TargetOutcome {
    let online = f.connections > 0;
    if f.id == creator {
        TargetOutcome::CreatorItself
    } else if !f.active {
        TargetOutcome::Revoked
    } else if !f.compatible {
        TargetOutcome::Incompatible
    } else if let Err(missing) = f.trust {
        TargetOutcome::NotTrusted(missing)
    } else if f.connections > 1 {
        TargetOutcome::Ambiguous
    } else if options.online_only && !online {
        TargetOutcome::Offline
    } else if !members.contains(&f.id) && members.len() >= options.member_limit {
        TargetOutcome::OverLimit
    } else {
        TargetOutcome::Invited { online }
    }
}

/// What every member agrees the session is; signed inside each invitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// The session's ID.
    pub session_id: String,
    /// The device that made it.
    pub creator: String,
    /// Members, sorted, the creator included.
    pub members: Vec<String>,
    /// Key generation: 1 at creation, one more at each rekey.
    pub epoch: u32,
    /// Protocol version.
    pub protocol: u32,
    /// When the session ends (ms since the epoch).
    pub expires_at: i64,
}

/// One member's invitation: the session key sealed to that member alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    /// The session as the sender sees it.
    pub descriptor: Descriptor,
    /// The member that made the key and signed (the creator, or a member that rekeyed).
    pub sender: String,
    /// The member it is for.
    pub recipient: String,
    /// 16 random bytes, base64url: the invitation's identity for the replay store.
    pub nonce: String,
    /// When it was made (ms).
    pub issued_at: i64,
    /// When it stops being accepted (ms), at most [`MAX_INVITATION_SECS`] after `issued_at`.
    pub expires_at: i64,
    /// HPKE encapsulated key, base64url.
    pub enc: String,
    /// HPKE ciphertext of the 32-byte session key, base64url.
    pub sealed_key: String,
}

/// An invitation with the sender's Ed25519 signature over [`invitation_bytes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedInvitation {
    /// What was signed.
    pub invitation: Invitation,
    /// base64url Ed25519 signature.
    pub signature: String,
}

/// Why an invitation was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvitationError {
    /// The signature does not match the sender's key.
    #[error("the invitation's signature does not match the sender's key")]
    Signature,
    /// Addressed to another device.
    #[error("the invitation is for another device")]
    NotForMe,
    /// The sender or the recipient is not in the member list, or the list is not sorted and unique.
    #[error("the invitation's member list is not valid")]
    Members,
    /// Past its lifetime, or the session is.
    #[error("the invitation has expired")]
    Expired,
    /// Valid for longer than allowed.
    #[error("the invitation is valid for too long")]
    Lifetime,
    /// Another protocol version.
    #[error("the invitation speaks protocol {0}, this device speaks {PROTOCOL_VERSION}")]
    Protocol(u32),
    /// It does not describe the session it was sent for.
    #[error("the invitation does not describe this session")]
    Descriptor,
    /// The invitations do not cover each member exactly once.
    #[error("the invitations must name each other member exactly once")]
    Recipients,
    /// Not encoded as it should be.
    #[error("the invitation is malformed: {0}")]
    Malformed(String),
}

impl From<TrustError> for InvitationError {
    fn from(e: TrustError) -> Self {
        match e {
            TrustError::BadSignature => InvitationError::Signature,
            other => InvitationError::Malformed(other.to_string()),
        }
    }
}

fn canonical<T: Serialize>(value: &T) -> Result<String, InvitationError> {
    serde_json_canonicalizer::to_string(value).map_err(|e| InvitationError::Malformed(e.to_string()))
}

/// The exact bytes an invitation's signature covers: a fixed line, then the
/// invitation as RFC 8785 canonical JSON.
pub fn invitation_bytes(invitation: &Invitation) -> Result<Vec<u8>, InvitationError> {
    let mut out = b"latchkey invitation v1\n".to_vec();
    out.extend_from_slice(canonical(invitation)?.as_bytes());
    Ok(out)
}

/// The associated data the session key is sealed with, so a sealed key
/// cannot be moved into another invitation.
pub fn seal_aad(descriptor: &Descriptor, recipient: &str, nonce: &str) -> Result<Vec<u8>, InvitationError> {
    let mut out = b"latchkey sealed key v1\n".to_vec();
    out.extend_from_slice(
        canonical(&serde_json::json!({"descriptor": descriptor, "recipient": recipient, "nonce": nonce}))?.as_bytes(),
    );
    Ok(out)
}

fn members_valid(d: &Descriptor) -> bool {
    d.members.windows(2).all(|w| w[0] < w[1]) && d.members.contains(&d.creator)
}

/// What a member checks before it accepts: the sender's signature, that it
/// is the recipient, the member list, the version and both lifetimes.
pub fn check_invitation(
    signed: &SignedInvitation,
    sender_key: &PublicKey,
    me: &str,
    now: Timestamp,
) -> Result<(), InvitationError> {
    let inv = &signed.invitation;
    sender_key.verify_b64(&invitation_bytes(inv)?, &signed.signature)?;
    if inv.recipient != me {
        return Err(InvitationError::NotForMe);
    }
    check_shape(inv, now)
}

fn check_shape(inv: &Invitation, now: Timestamp) -> Result<(), InvitationError> {
    let d = &inv.descriptor;
    if d.protocol != PROTOCOL_VERSION {
        return Err(InvitationError::Protocol(d.protocol));
    }
    if !members_valid(d) || !d.members.contains(&inv.sender) || !d.members.contains(&inv.recipient) {
        return Err(InvitationError::Members);
    }
    if inv.sender == inv.recipient {
        return Err(InvitationError::Recipients);
    }
    if inv.expires_at.saturating_sub(inv.issued_at) > MAX_INVITATION_SECS * 1000 {
        return Err(InvitationError::Lifetime);
    }
    if now.as_millis() >= inv.expires_at || now.as_millis() >= d.expires_at {
        return Err(InvitationError::Expired);
    }
    Ok(())
}

/// What the server checks of each invitation it relays from `sender`:
/// signed by `sender_key`, describing exactly `expected`, in date, and the
/// recipients and nonces distinct. Returns the recipients.
pub fn check_each<'a>(
    expected: &Descriptor,
    sender: &str,
    sender_key: &PublicKey,
    invitations: &'a [SignedInvitation],
    now: Timestamp,
) -> Result<BTreeSet<&'a str>, InvitationError> {
    let mut recipients = BTreeSet::new();
    let mut nonces = BTreeSet::new();
    for signed in invitations {
        let inv = &signed.invitation;
        sender_key.verify_b64(&invitation_bytes(inv)?, &signed.signature)?;
        if inv.descriptor != *expected {
            return Err(InvitationError::Descriptor);
        }
        if inv.sender != sender {
            return Err(InvitationError::Signature);
        }
        check_shape(inv, now)?;
        if !recipients.insert(inv.recipient.as_str()) || !nonces.insert(inv.nonce.as_str()) {
            return Err(InvitationError::Recipients);
        }
    }
    Ok(recipients)
}

/// What the server checks before it relays a full set of invitations (a new
/// session, or a new key): [`check_each`], and one for every other member.
pub fn check_issue(
    expected: &Descriptor,
    sender: &str,
    sender_key: &PublicKey,
    invitations: &[SignedInvitation],
    now: Timestamp,
) -> Result<(), InvitationError> {
    let recipients = check_each(expected, sender, sender_key, invitations, now)?;
    let others: BTreeSet<&str> = expected.members.iter().map(String::as_str).filter(|m| *m != sender).collect();
    if recipients != others {
        return Err(InvitationError::Recipients);
    }
    Ok(())
}

/// A member's standing in a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatus {
    /// Invited, not joined yet.
    Invited,
    /// Holds the current key (or had it before a rekey).
    Joined,
    /// Left by itself.
    Left,
    /// Taken out (revoked, trust ended, key changed without a chain).
    Removed,
}

impl MemberStatus {
    /// Stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Invited => "invited",
            MemberStatus::Joined => "joined",
            MemberStatus::Left => "left",
            MemberStatus::Removed => "removed",
        }
    }

    /// Reads back [`MemberStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [MemberStatus::Invited, MemberStatus::Joined, MemberStatus::Left, MemberStatus::Removed]
            .into_iter()
            .find(|m| m.as_str() == s)
    }

    /// Whether it counts as a member now (invited or joined).
    pub fn is_current(self) -> bool {
        matches!(self, MemberStatus::Invited | MemberStatus::Joined)
    }
}

/// Why a session operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionRefusal {
    /// No such session of which the caller is (or was) a member.
    NotFound,
    /// The caller is not a current member.
    NotMember,
    /// Only the creator may do this.
    NotCreator,
    /// The session is closed or expired.
    Ended,
    /// The invitations are not valid for this session now.
    Invitation(InvitationError),
    /// No new invitations are needed (someone else issued them).
    NotNeeded,
    /// No invitation with this nonce for the caller.
    UnknownInvitation,
    /// The invitation was used already.
    InvitationUsed,
    /// The invitation expired or is for an older key.
    InvitationExpired,
    /// The join signature does not match the caller's key.
    BadSignature,
    /// Members changed; a new key must be issued first.
    RekeyNeeded,
    /// The message is under another key generation.
    WrongEpoch(u32),
    /// The sender's counter is not the next one.
    OutOfOrder(i64),
}

/// A session as its rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionState {
    /// Closed (by its creator, by housekeeping, or down to one member).
    pub closed: bool,
    /// When it ends.
    pub expires_at: Timestamp,
    /// Current key generation.
    pub epoch: u32,
    /// Whether members changed since the current key was issued.
    pub rekey_needed: bool,
}

impl SessionState {
    /// `open`, `closed` or `expired` at `now`.
    pub fn status(&self, now: Timestamp) -> &'static str {
        if self.closed {
            "closed"
        } else if now >= self.expires_at {
            "expired"
        } else {
            "open"
        }
    }

    fn ended(&self, now: Timestamp) -> bool {
        self.status(now) != "open"
    }
}

/// Whether `sender` may relay message `seq` under key generation `epoch` now;
/// `last_seq` is the sender's last relayed number (its counter runs on across generations).
pub fn check_relay(
    s: &SessionState,
    sender: Option<MemberStatus>,
    epoch: u32,
    seq: i64,
    last_seq: i64,
    now: Timestamp,
) -> Result<(), SessionRefusal> {
    if s.ended(now) {
        Err(SessionRefusal::Ended)
    } else if sender != Some(MemberStatus::Joined) {
        Err(SessionRefusal::NotMember)
    } else if s.rekey_needed {
        Err(SessionRefusal::RekeyNeeded)
    } else if epoch != s.epoch {
        Err(SessionRefusal::WrongEpoch(s.epoch))
    } else if seq != last_seq + 1 {
        Err(SessionRefusal::OutOfOrder(last_seq + 1))
    } else {
        Ok(())
    }
}

/// Whether a member may accept its (unused) invitation for key generation
/// `epoch`, valid until `expires_at`; `Ok(true)` when this is its first join.
pub fn check_join(
    s: &SessionState,
    member: Option<MemberStatus>,
    epoch: u32,
    expires_at: Timestamp,
    now: Timestamp,
) -> Result<bool, SessionRefusal> {
    if s.ended(now) {
        return Err(SessionRefusal::Ended);
    }
    let Some(m) = member.filter(|m| m.is_current()) else { return Err(SessionRefusal::NotMember) };
    if epoch != s.epoch || now >= expires_at || s.rekey_needed {
        return Err(SessionRefusal::InvitationExpired);
    }
    Ok(m == MemberStatus::Invited)
}

/// What taking a member out does to its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Not a current member of an open session: nothing.
    Nothing,
    /// Fewer than two members would remain: the session ends.
    Close,
    /// The rest need a new key, of this generation, before messages flow again.
    Rekey {
        /// The new key generation.
        epoch: u32,
    },
}

/// Plans taking out a member whose standing is `member`, leaving `remaining`
/// current members.
pub fn plan_removal(s: &SessionState, member: Option<MemberStatus>, remaining: usize) -> Removal {
    if s.closed || !member.is_some_and(MemberStatus::is_current) {
        Removal::Nothing
    } else if remaining < 2 {
        Removal::Close
    } else {
        Removal::Rekey { epoch: s.epoch + 1 }
    }
}

/// The exact bytes a member signs when it joins: proof that it holds its
/// device key, tied to one invitation.
pub fn join_statement(session_id: &str, epoch: u32, device: &str, nonce: &str) -> Vec<u8> {
    format!("latchkey join v1\nsession: {session_id}\nepoch: {epoch}\ndevice: {device}\nnonce: {nonce}\n").into_bytes()
}

/// The associated data of a relayed message: who sent it, where, in which
/// key generation and at which place in the sender's order.
pub fn message_aad(session_id: &str, epoch: u32, sender: &str, seq: i64) -> Vec<u8> {
    format!("latchkey message v1\nsession: {session_id}\nepoch: {epoch}\nsender: {sender}\nseq: {seq}\n").into_bytes()
}

/// In which order members try to rekey after a member leaves: the creator
/// first, then by ID. A member waits its turn so they rarely race; the
/// server takes the first complete rekey.
pub fn rekey_rank(members: &[String], creator: &str, me: &str) -> Option<usize> {
    if me == creator {
        return members.iter().any(|m| m == me).then_some(0);
    }
    members.iter().filter(|m| *m != creator).position(|m| m == me).map(|i| i + 1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    fn facts(id: &str) -> TargetFacts {
        TargetFacts { id: id.into(), active: true, compatible: true, trust: Ok(()), connections: 1 }
    }

    fn opts() -> SessionOptions {
        SessionOptions { partial: false, online_only: false, member_limit: DEFAULT_MEMBER_LIMIT }
    }

    fn plan(targets: Vec<(&str, Resolved)>, o: SessionOptions) -> TargetPlan {
        let t: Vec<(String, Resolved)> = targets.into_iter().map(|(n, r)| (n.to_string(), r)).collect();
        plan_targets("me", &t, o)
    }

    #[test]
    fn every_target_gets_its_one_answer() {
        let cases: Vec<(Resolved, TargetOutcome)> = vec![
            (Resolved::Unknown, TargetOutcome::UnknownDevice),
            (Resolved::AmbiguousName, TargetOutcome::AmbiguousName),
            (Resolved::Device(facts("me")), TargetOutcome::CreatorItself),
            (Resolved::Device(TargetFacts { active: false, ..facts("b") }), TargetOutcome::Revoked),
            (Resolved::Device(TargetFacts { compatible: false, ..facts("b") }), TargetOutcome::Incompatible),
            (
                Resolved::Device(TargetFacts { trust: Err(Missing::Theirs), ..facts("b") }),
                TargetOutcome::NotTrusted(Missing::Theirs),
            ),
            (Resolved::Device(TargetFacts { connections: 2, ..facts("b") }), TargetOutcome::Ambiguous),
            (Resolved::Device(TargetFacts { connections: 0, ..facts("b") }), TargetOutcome::Invited { online: false }),
            (Resolved::Device(facts("b")), TargetOutcome::Invited { online: true }),
        ];
        for (resolved, expected) in cases {
            let p = plan(vec![("b", resolved.clone())], opts());
            assert_eq!(p.outcomes[0].2, expected, "{resolved:?}");
        }
        let offline = plan(
            vec![("b", Resolved::Device(TargetFacts { connections: 0, ..facts("b") }))],
            SessionOptions { online_only: true, ..opts() },
        );
        assert_eq!(offline.outcomes[0].2, TargetOutcome::Offline);
    }

    #[test]
    fn a_revoked_untrusted_device_is_answered_as_revoked() {
        // The order of checks is fixed, so the answer does not depend on luck.
        let f =
            TargetFacts { active: false, compatible: false, trust: Err(Missing::Both), connections: 3, ..facts("b") };
        assert_eq!(plan(vec![("b", Resolved::Device(f))], opts()).outcomes[0].2, TargetOutcome::Revoked);
    }

    #[test]
    fn all_or_nothing_unless_partial() {
        let targets = vec![("b", Resolved::Device(facts("b"))), ("x", Resolved::Unknown)];
        let strict = plan(targets.clone(), opts());
        assert!(!strict.create);
        assert!(strict.members.is_empty());
        assert_eq!(strict.outcomes[0].2, TargetOutcome::Invited { online: true });
        let partial = plan(targets, SessionOptions { partial: true, ..opts() });
        assert!(partial.create);
        assert_eq!(partial.members, vec!["b".to_string(), "me".to_string()]);
    }

    #[test]
    fn naming_only_yourself_makes_no_session() {
        let p = plan(vec![("me", Resolved::Device(facts("me")))], SessionOptions { partial: true, ..opts() });
        assert!(!p.create);
    }

    #[test]
    fn the_limit_counts_the_creator_and_each_device_once() {
        let o = SessionOptions { member_limit: 3, partial: true, ..opts() };
        let p = plan(
            vec![
                ("b", Resolved::Device(facts("b"))),
                ("b-again", Resolved::Device(facts("b"))),
                ("c", Resolved::Device(facts("c"))),
                ("d", Resolved::Device(facts("d"))),
            ],
            o,
        );
        let answers: Vec<TargetOutcome> = p.outcomes.iter().map(|o| o.2).collect();
        assert_eq!(
            answers,
            vec![
                TargetOutcome::Invited { online: true },
                TargetOutcome::Invited { online: true },
                TargetOutcome::Invited { online: true },
                TargetOutcome::OverLimit
            ]
        );
        assert_eq!(p.members, vec!["b", "c", "me"]);
    }

    fn signer(seed: u8) -> (Ed25519KeyPair, PublicKey) {
        let kp = Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap();
        let pk = PublicKey::from_bytes(kp.public_key().as_ref()).unwrap();
        (kp, pk)
    }

    fn descriptor() -> Descriptor {
        Descriptor {
            session_id: "s1".into(),
            creator: "a".into(),
            members: vec!["a".into(), "b".into(), "c".into()],
            epoch: 1,
            protocol: PROTOCOL_VERSION,
            expires_at: 10_000_000,
        }
    }

    fn invite(kp: &Ed25519KeyPair, to: &str, nonce: &str) -> SignedInvitation {
        let invitation = Invitation {
            descriptor: descriptor(),
            sender: "a".into(),
            recipient: to.into(),
            nonce: nonce.into(),
            issued_at: 1000,
            expires_at: 301_000,
            enc: "e".into(),
            sealed_key: "k".into(),
        };
        let sig = kp.sign(&invitation_bytes(&invitation).unwrap());
        SignedInvitation { invitation, signature: URL_SAFE_NO_PAD.encode(sig.as_ref()) }
    }

    #[test]
    fn members_accept_only_their_own_signed_current_invitation() {
        let (a, a_pk) = signer(1);
        let (_, b_pk) = signer(2);
        let inv = invite(&a, "b", "n1");
        let now = Timestamp::from_millis(2000);
        assert_eq!(check_invitation(&inv, &a_pk, "b", now), Ok(()));
        assert_eq!(check_invitation(&inv, &b_pk, "b", now), Err(InvitationError::Signature));
        assert_eq!(check_invitation(&inv, &a_pk, "c", now), Err(InvitationError::NotForMe));
        assert_eq!(check_invitation(&inv, &a_pk, "b", Timestamp::from_millis(301_000)), Err(InvitationError::Expired));
        let mut tampered = inv.clone();
        tampered.invitation.descriptor.members.push("z".into());
        assert_eq!(check_invitation(&tampered, &a_pk, "b", now), Err(InvitationError::Signature));
    }

    #[test]
    fn the_server_relays_only_a_complete_signed_set() {
        let (a, a_pk) = signer(1);
        let now = Timestamp::from_millis(2000);
        let good = vec![invite(&a, "b", "n1"), invite(&a, "c", "n2")];
        assert_eq!(check_issue(&descriptor(), "a", &a_pk, &good, now), Ok(()));
        let missing = vec![invite(&a, "b", "n1")];
        assert_eq!(check_issue(&descriptor(), "a", &a_pk, &missing, now), Err(InvitationError::Recipients));
        let twice = vec![invite(&a, "b", "n1"), invite(&a, "b", "n2"), invite(&a, "c", "n3")];
        assert_eq!(check_issue(&descriptor(), "a", &a_pk, &twice, now), Err(InvitationError::Recipients));
        let same_nonce = vec![invite(&a, "b", "n1"), invite(&a, "c", "n1")];
        assert_eq!(check_issue(&descriptor(), "a", &a_pk, &same_nonce, now), Err(InvitationError::Recipients));
        let other = Descriptor { epoch: 2, ..descriptor() };
        assert_eq!(check_issue(&other, "a", &a_pk, &good, now), Err(InvitationError::Descriptor));
        let (x, _) = signer(9);
        let forged = vec![invite(&x, "b", "n1"), invite(&a, "c", "n2")];
        assert_eq!(check_issue(&descriptor(), "a", &a_pk, &forged, now), Err(InvitationError::Signature));
    }

    #[test]
    fn invitations_may_not_live_long() {
        let (a, a_pk) = signer(1);
        let mut inv = invite(&a, "b", "n").invitation;
        inv.expires_at = inv.issued_at + MAX_INVITATION_SECS * 1000 + 1;
        let sig = a.sign(&invitation_bytes(&inv).unwrap());
        let signed = SignedInvitation { invitation: inv, signature: URL_SAFE_NO_PAD.encode(sig.as_ref()) };
        assert_eq!(check_invitation(&signed, &a_pk, "b", Timestamp::from_millis(2000)), Err(InvitationError::Lifetime));
    }

    #[test]
    fn rekey_order_is_the_creator_then_by_id() {
        let members: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(rekey_rank(&members, "b", "b"), Some(0));
        assert_eq!(rekey_rank(&members, "b", "a"), Some(1));
        assert_eq!(rekey_rank(&members, "b", "c"), Some(2));
        assert_eq!(rekey_rank(&members, "b", "z"), None);
    }

    fn open_session() -> SessionState {
        SessionState { closed: false, expires_at: Timestamp::from_millis(10_000), epoch: 2, rekey_needed: false }
    }

    #[test]
    fn relays_are_refused_in_a_fixed_order() {
        let (s, now) = (open_session(), Timestamp::from_millis(100));
        let joined = Some(MemberStatus::Joined);
        assert_eq!(check_relay(&s, joined, 2, 4, 3, now), Ok(()));
        assert_eq!(check_relay(&s, joined, 2, 5, 3, now), Err(SessionRefusal::OutOfOrder(4)));
        assert_eq!(check_relay(&s, joined, 1, 4, 3, now), Err(SessionRefusal::WrongEpoch(2)));
        let pending = SessionState { rekey_needed: true, ..s };
        assert_eq!(check_relay(&pending, joined, 2, 4, 3, now), Err(SessionRefusal::RekeyNeeded));
        assert_eq!(check_relay(&s, Some(MemberStatus::Invited), 2, 4, 3, now), Err(SessionRefusal::NotMember));
        assert_eq!(check_relay(&s, None, 2, 4, 3, now), Err(SessionRefusal::NotMember));
        assert_eq!(check_relay(&s, joined, 2, 4, 3, s.expires_at), Err(SessionRefusal::Ended));
        let closed = SessionState { closed: true, ..s };
        assert_eq!(check_relay(&closed, Some(MemberStatus::Left), 9, 0, 3, now), Err(SessionRefusal::Ended));
    }

    #[test]
    fn joins_need_a_current_member_and_a_current_invitation() {
        let (s, now) = (open_session(), Timestamp::from_millis(100));
        let until = Timestamp::from_millis(500);
        assert_eq!(check_join(&s, Some(MemberStatus::Invited), 2, until, now), Ok(true));
        assert_eq!(check_join(&s, Some(MemberStatus::Joined), 2, until, now), Ok(false), "a rejoin at a new key");
        assert_eq!(check_join(&s, Some(MemberStatus::Removed), 2, until, now), Err(SessionRefusal::NotMember));
        assert_eq!(check_join(&s, Some(MemberStatus::Invited), 1, until, now), Err(SessionRefusal::InvitationExpired));
        assert_eq!(check_join(&s, Some(MemberStatus::Invited), 2, now, now), Err(SessionRefusal::InvitationExpired));
        let pending = SessionState { rekey_needed: true, ..s };
        assert_eq!(
            check_join(&pending, Some(MemberStatus::Invited), 2, until, now),
            Err(SessionRefusal::InvitationExpired)
        );
    }

    #[test]
    fn removal_rekeys_or_closes() {
        let s = open_session();
        assert_eq!(plan_removal(&s, Some(MemberStatus::Joined), 2), Removal::Rekey { epoch: 3 });
        assert_eq!(plan_removal(&s, Some(MemberStatus::Invited), 1), Removal::Close);
        assert_eq!(plan_removal(&s, Some(MemberStatus::Left), 3), Removal::Nothing);
        assert_eq!(plan_removal(&s, None, 3), Removal::Nothing);
        assert_eq!(plan_removal(&SessionState { closed: true, ..s }, Some(MemberStatus::Joined), 3), Removal::Nothing);
        assert_eq!(MemberStatus::parse("joined"), Some(MemberStatus::Joined));
        assert_eq!(MemberStatus::parse("gone"), None);
    }
}
