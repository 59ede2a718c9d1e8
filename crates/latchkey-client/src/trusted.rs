//! Trusted devices and automatic sessions, the device's side.
//!
//! A [`TrustedDevice`] is one device: its client, its key, its ID, its
//! access token and the directory of its local [`TrustStore`]. It publishes
//! its session key, trusts other devices, rotates its key, makes sessions
//! (sealing a fresh session key to each member), and, fed the events of its
//! [`Channel`], joins the sessions it is invited to, decrypts their messages
//! and rekeys them when a member leaves.
//!
//! The server relays keys but is never believed about them: before sealing
//! to a member or accepting an invitation, the key the server reports must
//! be the one the user confirmed at `trust add`, or reached from it through
//! rotations the old key signed; and a member's session key must be signed
//! by that key.

use crate::channel::Channel;
use crate::dpop::{DeviceKey, KeyError};
use crate::profile::now_ms;
use crate::seal::{decrypt_message, encrypt_message, invite, open_session_key, SessionKey};
use crate::trust_store::TrustStore;
use crate::{path_segment, Auth, Client, ClientError};
use futures::TryStreamExt;
use latchkey_domain::time::Timestamp;
use latchkey_domain::trust::{
    carries_over, rotation_statement, session_key_statement, trust_statement, PublicKey, Rotation, TrustError,
    PROTOCOL_VERSION,
};
use latchkey_domain::trusted_session::{
    check_invitation, join_statement, rekey_rank, Descriptor, InvitationError, SignedInvitation,
};
use latchkey_proto::oauth::TokenResponse;
use latchkey_proto::paths;
use latchkey_proto::trust::{
    ChannelEvent, CreateSession, DeviceKeys, IssueInvitations, JoinRequest, RotateKeyRequest, SendMessage, Sent,
    SessionCreated, SessionInfo, SessionKey as PublishedSessionKey, SessionPlan, SessionRequest, TrustInfo, TrustList,
    TrustRequest,
};
use reqwest::Method;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long a member waits per place in the rekey order before it rekeys.
pub const REKEY_STEP: Duration = Duration::from_millis(300);

/// What went wrong with trust or a trusted session.
#[derive(Debug, thiserror::Error)]
pub enum TrustedError {
    /// Talking to the server failed, or it refused.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The device key could not sign.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A key, signature or ID was refused.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// An invitation was refused.
    #[error(transparent)]
    Invitation(#[from] InvitationError),
    /// The device is not in this machine's trust store.
    #[error("this machine has not trusted device {0}; run `latchkey trust add {0}` after comparing fingerprints")]
    NotTrusted(String),
    /// The server reports a key this machine never trusted and no signed rotation leads to.
    #[error("the server reports a key for device {device} (fingerprint {fingerprint}) that this machine never trusted and that no signed key rotation leads to; compare fingerprints and run `latchkey trust add {device}` again")]
    KeyChanged {
        /// The device.
        device: String,
        /// The reported key's fingerprint.
        fingerprint: String,
    },
    /// The device is revoked.
    #[error("device {0} is revoked")]
    Revoked(String),
    /// The device has no session key for this protocol, or its signature is wrong.
    #[error("device {device} has no valid session key: {reason}")]
    SessionKey {
        /// The device.
        device: String,
        /// Why.
        reason: String,
    },
    /// This device holds no key for the session.
    #[error("this device holds no key for trusted session {0}; it has not joined it (run `latchkey session listen`)")]
    NoKey(String),
    /// The server's answer contradicts itself or the protocol.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// Encryption or decryption failed.
    #[error("{0}")]
    Crypto(String),
    /// The message is too large to relay.
    #[error("the encrypted message is {0} bytes, more than the relay takes")]
    TooLarge(usize),
    /// The channel failed.
    #[error("the channel failed: {0}")]
    Channel(String),
    /// A local file could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A local file does not parse.
    #[error("the file {0} is damaged")]
    Corrupt(PathBuf),
}

impl TrustedError {
    /// The server's error code, if the server refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            TrustedError::Client(c) => c.code(),
            _ => None,
        }
    }

    /// The HTTP status, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            TrustedError::Client(c) => c.status(),
            _ => None,
        }
    }
}

/// Result of a trusted-session call.
pub type TrustedResult<T> = Result<T, TrustedError>;

/// A new device key the server accepted, with the tokens bound to it. Store
/// both, then publish the session key again (it is derived from the device key).
#[derive(Debug)]
pub struct Rotated {
    /// The new key.
    pub key: Arc<DeviceKey>,
    /// Tokens bound to the new key (the old ones are revoked).
    pub tokens: TokenResponse,
}

/// A decrypted message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Received {
    /// Position in the channel's log.
    pub id: i64,
    /// Session ID.
    pub session_id: String,
    /// Sending device.
    pub sender: String,
    /// The sender's counter.
    pub seq: i64,
    /// Key generation.
    pub epoch: u32,
    /// The plaintext.
    pub plaintext: Vec<u8>,
}

/// What handling one channel event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// The channel is open.
    Ready {
        /// Connection ID.
        connection: String,
    },
    /// This device accepted an invitation and joined.
    Joined {
        /// Session ID.
        session_id: String,
        /// Key generation joined at.
        epoch: u32,
        /// Who sent the invitation.
        sender: String,
    },
    /// A message, decrypted.
    Message(Received),
    /// A message this device sent itself (not decrypted again).
    Own {
        /// Position in the log.
        id: i64,
    },
    /// Something happened to a session.
    Session {
        /// Position in the log.
        id: i64,
        /// Session ID.
        session_id: String,
        /// The event's name.
        event: String,
        /// The device it concerns.
        device: Option<String>,
        /// Key generation after it.
        epoch: u32,
        /// Whether this device answered it by issuing invitations (a rekey or a fresh invitation).
        issued: bool,
    },
    /// Messages before `oldest` were dropped from the backlog.
    Gap {
        /// The oldest position kept.
        oldest: i64,
    },
}

/// The devices a session counts as members now (invited or joined), sorted.
pub fn live_members(info: &SessionInfo) -> Vec<String> {
    let mut m: Vec<String> = info
        .members
        .iter()
        .filter(|m| m.status == "invited" || m.status == "joined")
        .map(|m| m.device_id.clone())
        .collect();
    m.sort();
    m.dedup();
    m
}

/// The rotations of a device as reported, each counted as chained only if the old key's signature checks.
pub fn checked_rotations(keys: &DeviceKeys) -> Vec<Rotation> {
    keys.rotations
        .iter()
        .filter_map(|r| {
            let old = PublicKey::from_b64(&r.old).ok()?;
            let new = PublicKey::from_b64(&r.new).ok()?;
            let chained = match (&r.signature, rotation_statement(&keys.device_id, &old, &new)) {
                (Some(sig), Ok(stmt)) => old.verify_b64(&stmt, sig).is_ok(),
                _ => false,
            };
            Some(Rotation { old, new, chained })
        })
        .collect()
}

/// The device's current key, if trust in `trusted` (what the user confirmed) still speaks for it:
/// the same key, or one reached from it through rotations the old keys signed.
pub fn current_key(keys: &DeviceKeys, trusted: &PublicKey) -> TrustedResult<PublicKey> {
    if keys.status != "active" {
        return Err(TrustedError::Revoked(keys.device_id.clone()));
    }
    let current = PublicKey::from_b64(&keys.public_key)?;
    if carries_over(trusted, &current, &checked_rotations(keys)) {
        Ok(current)
    } else {
        Err(TrustedError::KeyChanged { device: keys.device_id.clone(), fingerprint: current.fingerprint().to_string() })
    }
}

/// The device's X25519 session key, if it is for this protocol and signed by `device_key`.
pub fn session_key_of(keys: &DeviceKeys, device_key: &PublicKey) -> TrustedResult<[u8; 32]> {
    let refuse = |reason: &str| TrustedError::SessionKey { device: keys.device_id.clone(), reason: reason.into() };
    let sk = keys.session_key.as_ref().ok_or_else(|| refuse("none published"))?;
    if sk.protocol != PROTOCOL_VERSION {
        return Err(refuse(&format!("it is for protocol {}", sk.protocol)));
    }
    let raw = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &sk.key)
        .map_err(|_| refuse("not base64url"))?;
    let key: [u8; 32] = raw.as_slice().try_into().map_err(|_| refuse("not 32 bytes"))?;
    let stmt = session_key_statement(&keys.device_id, sk.protocol, &key)?;
    device_key.verify_b64(&stmt, &sk.signature).map_err(|_| refuse("not signed by its device key"))?;
    Ok(key)
}

fn to_json<T: Serialize>(value: &T) -> TrustedResult<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| TrustedError::Protocol(e.to_string()))
}

/// One device taking part in trusted sessions.
#[derive(Clone)]
pub struct TrustedDevice {
    client: Client,
    key: Arc<DeviceKey>,
    device_id: String,
    token: String,
    store: TrustStore,
    rekey_step: Duration,
}

impl std::fmt::Debug for TrustedDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the access token.
        f.debug_struct("TrustedDevice").field("device_id", &self.device_id).field("store", &self.store).finish()
    }
}

impl TrustedDevice {
    /// Device `device_id`, calling with `access_token` (bound to `key`) and keeping its state in `state_dir`.
    pub fn new(
        client: Client,
        key: Arc<DeviceKey>,
        device_id: impl Into<String>,
        access_token: impl Into<String>,
        state_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            client: client.with_device_key(key.clone()),
            key,
            device_id: device_id.into(),
            token: access_token.into(),
            store: TrustStore::new(state_dir),
            rekey_step: REKEY_STEP,
        }
    }

    /// The same device, waiting `step` per place in the rekey order (tests shorten it).
    pub fn with_rekey_step(mut self, step: Duration) -> Self {
        self.rekey_step = step;
        self
    }

    /// This device's ID.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// This device's key.
    pub fn device_key(&self) -> &Arc<DeviceKey> {
        &self.key
    }

    /// The local trust store.
    pub fn store(&self) -> &TrustStore {
        &self.store
    }

    /// Uses a fresh access token from now on.
    pub fn set_access_token(&mut self, token: impl Into<String>) {
        self.token = token.into();
    }

    fn auth(&self) -> Auth<'_> {
        Auth::Access(&self.token)
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> TrustedResult<T> {
        Ok(self.client.call(method, path, self.auth(), body).await?)
    }

    async fn call_empty(&self, method: Method, path: &str, body: Option<serde_json::Value>) -> TrustedResult<()> {
        Ok(self.client.call_empty(method, path, self.auth(), body).await?)
    }

    /// Publishes this device's session key (derived from its device key) and its signature; safe to repeat.
    pub async fn publish_session_key(&self) -> TrustedResult<()> {
        let pair = self.key.session_key_pair();
        let stmt = session_key_statement(&self.device_id, PROTOCOL_VERSION, &pair.public)?;
        let body = PublishedSessionKey {
            protocol: PROTOCOL_VERSION,
            key: base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, pair.public),
            signature: self.key.sign_b64(&stmt),
        };
        self.call_empty(Method::PUT, paths::DEVICE_SESSION_KEY, Some(to_json(&body)?)).await
    }

    /// A device's keys as the server reports them (not yet checked against local trust).
    pub async fn device_keys(&self, device_id: &str) -> TrustedResult<DeviceKeys> {
        self.call(Method::GET, &paths::with_id(paths::DEVICE_KEYS, &path_segment(device_id)), None).await
    }

    /// The device's current key, checked against this machine's trust store; a key reached
    /// through signed rotations replaces the stored one.
    pub fn check_device(&self, keys: &DeviceKeys) -> TrustedResult<PublicKey> {
        let trusted =
            self.store.trusted_key(&keys.device_id)?.ok_or_else(|| TrustedError::NotTrusted(keys.device_id.clone()))?;
        let current = current_key(keys, &trusted)?;
        if current != trusted {
            self.store.set_trusted(&keys.device_id, &current, &keys.name, now_ms())?;
        }
        Ok(current)
    }

    /// Trusts the key `keys` reports (call it only after the user compared its fingerprint):
    /// signs the statement, sends it, and records the key in the local trust store.
    pub async fn trust(&self, keys: &DeviceKeys) -> TrustedResult<TrustInfo> {
        let key = PublicKey::from_b64(&keys.public_key)?;
        let issued_at_ms = now_ms();
        let stmt = trust_statement(&self.device_id, &keys.device_id, &key, Timestamp::from_millis(issued_at_ms))?;
        let body = TrustRequest {
            trustee: keys.device_id.clone(),
            trustee_key: key.to_b64(),
            issued_at_ms,
            signature: self.key.sign_b64(&stmt),
        };
        let info: TrustInfo = self.call(Method::POST, paths::TRUSTS, Some(to_json(&body)?)).await?;
        self.store.set_trusted(&keys.device_id, &key, &keys.name, issued_at_ms)?;
        Ok(info)
    }

    /// Every trust statement between the user's devices.
    pub async fn trusts(&self) -> TrustedResult<TrustList> {
        self.call(Method::GET, paths::TRUSTS, None).await
    }

    /// Withdraws this device's trust in `device_id`, on the server and here.
    pub async fn untrust(&self, device_id: &str) -> TrustedResult<()> {
        match self.call_empty(Method::DELETE, &paths::with_id(paths::TRUST, &path_segment(device_id)), None).await {
            Ok(()) => {}
            // Not on the server: still forget it here.
            Err(e) if e.code() == Some("not_found") => {}
            Err(e) => return Err(e),
        }
        self.store.remove_trusted(device_id)?;
        Ok(())
    }

    /// Replaces this device's key with a new one; `chained`: the old key signs the new one so
    /// trust carries over. The proof is signed by the old key. Nothing changes here: store the
    /// returned key and tokens, then [`TrustedDevice::adopt`] them and publish the session key.
    pub async fn rotate_key(&self, chained: bool) -> TrustedResult<Rotated> {
        let new = DeviceKey::generate()?;
        let chain_signature = if chained {
            let stmt = rotation_statement(&self.device_id, &self.key.public_key(), &new.public_key())?;
            Some(self.key.sign_b64(&stmt))
        } else {
            None
        };
        let body = RotateKeyRequest { public_jwk: new.public_jwk(), chain_signature };
        let tokens: TokenResponse = self.call(Method::POST, paths::DEVICE_KEY, Some(to_json(&body)?)).await?;
        Ok(Rotated { key: Arc::new(new), tokens })
    }

    /// Switches to a rotated key and its access token.
    pub fn adopt(&mut self, rotated: &Rotated) {
        self.key = rotated.key.clone();
        self.client = self.client.clone().with_device_key(rotated.key.clone());
        self.token = rotated.tokens.access_token.clone();
    }

    /// Who a new session would have, without making it.
    pub async fn plan(&self, req: &SessionRequest) -> TrustedResult<SessionPlan> {
        self.call(Method::POST, paths::TRUSTED_SESSION_PLAN, Some(to_json(req)?)).await
    }

    /// Plans a session and, when the plan makes one, seals a fresh session key to each
    /// member (each checked against local trust), creates it and keeps the key.
    /// `session` is `None` when it was not made (see `targets`).
    pub async fn create_session(&self, req: &SessionRequest) -> TrustedResult<SessionCreated> {
        let plan = self.plan(req).await?;
        if !plan.create {
            return Ok(SessionCreated { targets: plan.targets, session: None });
        }
        let d =
            plan.descriptor.ok_or_else(|| TrustedError::Protocol("a plan that creates has no descriptor".into()))?;
        if d.creator != self.device_id
            || d.protocol != PROTOCOL_VERSION
            || !d.members.contains(&self.device_id)
            || !d.members.windows(2).all(|w| w[0] < w[1])
        {
            return Err(TrustedError::Protocol("the planned session descriptor is not valid for this device".into()));
        }
        let key = SessionKey::generate()?;
        let invitations = self.invitations(&d, &key, &plan.members, None)?;
        let body = CreateSession { descriptor: d.clone(), invitations };
        let mut created: SessionCreated =
            self.call(Method::POST, paths::TRUSTED_SESSIONS, Some(to_json(&body)?)).await?;
        if created.session.is_some() {
            // The server re-checked the members by ID; answer the targets as they were named.
            created.targets = plan.targets;
        }
        if let Some(s) = &created.session {
            if s.id != d.session_id {
                return Err(TrustedError::Protocol("the session made is not the one planned".into()));
            }
            self.store.put_key(&d, &key, now_ms())?;
        }
        Ok(created)
    }

    /// One signed invitation per other member of `d` (or only for `only`), each member's keys
    /// taken from `member_keys` and checked against local trust.
    fn invitations(
        &self,
        d: &Descriptor,
        key: &SessionKey,
        member_keys: &[DeviceKeys],
        only: Option<&str>,
    ) -> TrustedResult<Vec<SignedInvitation>> {
        let now = now_ms();
        let mut out = Vec::new();
        for member in d.members.iter().filter(|m| **m != self.device_id && only.is_none_or(|o| o == m.as_str())) {
            let keys = member_keys
                .iter()
                .find(|k| k.device_id == *member)
                .ok_or_else(|| TrustedError::Protocol(format!("no keys for member {member}")))?;
            let device_key = self.check_device(keys)?;
            let session_key = session_key_of(keys, &device_key)?;
            out.push(invite(&self.key, &self.device_id, d, key, member, &session_key, now)?);
        }
        Ok(out)
    }

    /// The sessions this device is a member of.
    pub async fn sessions(&self) -> TrustedResult<Vec<SessionInfo>> {
        self.call(Method::GET, paths::TRUSTED_SESSIONS, None).await
    }

    /// One session.
    pub async fn session(&self, id: &str) -> TrustedResult<SessionInfo> {
        self.call(Method::GET, &paths::with_id(paths::TRUSTED_SESSION, &path_segment(id)), None).await
    }

    /// Closes a session this device made, and forgets its keys.
    pub async fn close_session(&self, id: &str) -> TrustedResult<()> {
        self.call_empty(Method::DELETE, &paths::with_id(paths::TRUSTED_SESSION, &path_segment(id)), None).await?;
        self.store.forget_session(id)?;
        Ok(())
    }

    /// Leaves a session, and forgets its keys.
    pub async fn leave_session(&self, id: &str) -> TrustedResult<()> {
        self.call_empty(Method::POST, &paths::with_id(paths::TRUSTED_SESSION_LEAVE, &path_segment(id)), None).await?;
        self.store.forget_session(id)?;
        Ok(())
    }

    /// Encrypts `plaintext` with the newest key held for the session and relays it.
    pub async fn send(&self, session_id: &str, plaintext: &[u8]) -> TrustedResult<Sent> {
        let held = self.store.session(session_id)?.ok_or_else(|| TrustedError::NoKey(session_id.into()))?;
        let (epoch, key) = held.latest()?.ok_or_else(|| TrustedError::NoKey(session_id.into()))?;
        let seq = held.next_seq;
        let body = encrypt_message(&key, session_id, epoch, &self.device_id, seq, plaintext)?;
        let path = paths::with_id(paths::TRUSTED_SESSION_MESSAGES, &path_segment(session_id));
        let sent: Sent = self.call(Method::POST, &path, Some(to_json(&SendMessage { epoch, seq, body })?)).await?;
        self.store.sent(session_id, seq)?;
        Ok(sent)
    }

    /// Opens this device's channel, resuming after position `after` (0: from the start of the backlog).
    /// The device counts as online while the channel is held.
    pub async fn channel(&self, after: i64) -> TrustedResult<Channel> {
        let resp = self.client.open_stream(paths::CHANNEL, after, self.auth()).await?;
        Ok(Channel::from_stream(resp.bytes_stream().map_err(|e| e.to_string()), after))
    }

    /// Checks an invitation (sender's key against local trust, signature, addressee,
    /// lifetimes), opens its session key, joins, and keeps the key.
    pub async fn accept_invitation(&self, signed: &SignedInvitation) -> TrustedResult<u32> {
        let inv = &signed.invitation;
        let sender_keys = self.device_keys(&inv.sender).await?;
        if sender_keys.device_id != inv.sender {
            return Err(TrustedError::Protocol("keys of another device than the sender".into()));
        }
        let sender_key = self.check_device(&sender_keys)?;
        check_invitation(signed, &sender_key, &self.device_id, Timestamp::from_millis(now_ms()))?;
        let key = open_session_key(inv, &self.key.session_key_pair())?;
        let d = &inv.descriptor;
        let stmt = join_statement(&d.session_id, d.epoch, &self.device_id, &inv.nonce);
        let body = JoinRequest { nonce: inv.nonce.clone(), signature: self.key.sign_b64(&stmt) };
        let path = paths::with_id(paths::TRUSTED_SESSION_JOIN, &path_segment(&d.session_id));
        match self.call::<SessionInfo>(Method::POST, &path, Some(to_json(&body)?)).await {
            Ok(_) => {}
            // Replayed after a reconnect: already joined with this very invitation.
            Err(e)
                if e.code() == Some("invitation_used")
                    && self.store.session(&d.session_id)?.and_then(|s| s.keys.get(&d.epoch).cloned()).is_some() => {}
            Err(e) => return Err(e),
        }
        self.store.put_key(d, &key, now_ms())?;
        Ok(d.epoch)
    }

    /// Decrypts one relayed message with the key held for its session and key generation.
    pub fn decrypt(
        &self,
        id: i64,
        session_id: &str,
        sender: &str,
        seq: i64,
        epoch: u32,
        body: &str,
    ) -> TrustedResult<Received> {
        let held = self.store.session(session_id)?.ok_or_else(|| TrustedError::NoKey(session_id.into()))?;
        let key = held.key(epoch)?.ok_or_else(|| TrustedError::NoKey(format!("{session_id} (epoch {epoch})")))?;
        // The server orders each sender's messages; one it hands over twice is refused here.
        if held.received.get(sender).is_some_and(|last| seq <= *last) {
            return Err(TrustedError::Protocol(format!("message {seq} from {sender} was already read (a replay)")));
        }
        let plaintext = decrypt_message(&key, session_id, epoch, sender, seq, body)?;
        self.store.received(session_id, sender, seq)?;
        Ok(Received { id, session_id: session_id.into(), sender: sender.into(), seq, epoch, plaintext })
    }

    /// Issues invitations at the session's current key generation: a new key for every other
    /// member (`only` = `None`, a rekey), or the current key for one member. `false` when
    /// another member got there first (409).
    pub async fn issue(&self, info: &SessionInfo, only: Option<&str>) -> TrustedResult<bool> {
        let d = Descriptor {
            session_id: info.id.clone(),
            creator: info.creator.clone(),
            members: live_members(info),
            epoch: info.epoch,
            protocol: PROTOCOL_VERSION,
            expires_at: info.expires_at_ms,
        };
        let key = match only {
            None => SessionKey::generate()?,
            Some(_) => self
                .store
                .session(&info.id)?
                .and_then(|s| s.keys.get(&info.epoch).cloned())
                .map(|k| SessionKey::from_b64(&k))
                .transpose()?
                .ok_or_else(|| TrustedError::NoKey(format!("{} (epoch {})", info.id, info.epoch)))?,
        };
        let mut member_keys = Vec::new();
        for m in d.members.iter().filter(|m| **m != self.device_id && only.is_none_or(|o| o == m.as_str())) {
            member_keys.push(self.device_keys(m).await?);
        }
        let invitations = self.invitations(&d, &key, &member_keys, only)?;
        if invitations.is_empty() {
            return Ok(false);
        }
        let path = paths::with_id(paths::TRUSTED_SESSION_INVITATIONS, &path_segment(&info.id));
        match self
            .call_empty(Method::POST, &path, Some(to_json(&IssueInvitations { descriptor: d.clone(), invitations })?))
            .await
        {
            Ok(()) => {
                if only.is_none() {
                    self.store.put_key(&d, &key, now_ms())?;
                }
                Ok(true)
            }
            Err(e) if e.code() == Some("conflict") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Waits this device's turn in the rekey order, then issues what is still missing.
    async fn answer_in_turn(&self, session_id: &str, only: Option<&str>) -> TrustedResult<bool> {
        let Some(held) = self.store.session(session_id)? else { return Ok(false) };
        if held.keys.is_empty() {
            return Ok(false);
        }
        let info = self.session(session_id).await?;
        let Some(rank) = rekey_rank(&live_members(&info), &info.creator, &self.device_id) else { return Ok(false) };
        tokio::time::sleep(self.rekey_step * rank as u32).await;
        let info = self.session(session_id).await?;
        if info.status != "open" {
            return Ok(false);
        }
        match only {
            None if !info.rekey_needed || held.keys.contains_key(&info.epoch) => Ok(false),
            Some(_) if !held.keys.contains_key(&info.epoch) || info.rekey_needed => Ok(false),
            _ => self.issue(&info, only).await,
        }
    }

    /// Handles one channel event: joins on an invitation, decrypts a message, rekeys when
    /// asked (in turn), re-invites a member whose invitation lapsed, forgets a closed session.
    pub async fn handle(&self, event: ChannelEvent) -> TrustedResult<Update> {
        match event {
            ChannelEvent::Ready { connection } => Ok(Update::Ready { connection }),
            ChannelEvent::Invitation { invitation } => {
                let epoch = self.accept_invitation(&invitation).await?;
                let inv = invitation.invitation;
                Ok(Update::Joined { session_id: inv.descriptor.session_id, epoch, sender: inv.sender })
            }
            ChannelEvent::Message { id, sender, .. } if sender == self.device_id => Ok(Update::Own { id }),
            ChannelEvent::Message { id, session_id, sender, seq, epoch, body } => {
                Ok(Update::Message(self.decrypt(id, &session_id, &sender, seq, epoch, &body)?))
            }
            ChannelEvent::Session { id, session_id, event, device, epoch } => {
                let me = device.as_deref() == Some(self.device_id.as_str());
                let issued = match event.as_str() {
                    "rekey_needed" => self.answer_in_turn(&session_id, None).await?,
                    "invitation_needed" => match device.as_deref() {
                        Some(d) if !me => self.answer_in_turn(&session_id, Some(d)).await?,
                        _ => false,
                    },
                    "closed" => {
                        self.store.forget_session(&session_id)?;
                        false
                    }
                    "member_left" | "member_removed" if me => {
                        self.store.forget_session(&session_id)?;
                        false
                    }
                    _ => false,
                };
                Ok(Update::Session { id, session_id, event, device, epoch, issued })
            }
            ChannelEvent::Gap { oldest } => Ok(Update::Gap { oldest }),
        }
    }

    /// The next event of `channel`, handled; `None` when the channel ended.
    pub async fn next_update(&self, channel: &mut Channel) -> Option<TrustedResult<Update>> {
        match channel.next().await? {
            Ok(event) => Some(self.handle(event).await),
            Err(e) => Some(Err(e)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use latchkey_proto::trust::{KeyRotation, MemberInfo};

    fn keys_of(id: &str, key: &DeviceKey, rotations: Vec<KeyRotation>) -> DeviceKeys {
        let pk = key.public_key();
        let pair = key.session_key_pair();
        let stmt = session_key_statement(id, PROTOCOL_VERSION, &pair.public).unwrap();
        DeviceKeys {
            device_id: id.into(),
            name: format!("device {id}"),
            slug: id.into(),
            status: "active".into(),
            public_key: pk.to_b64(),
            fingerprint: pk.fingerprint().to_string(),
            session_key: Some(PublishedSessionKey {
                protocol: PROTOCOL_VERSION,
                key: URL_SAFE_NO_PAD.encode(pair.public),
                signature: key.sign_b64(&stmt),
            }),
            rotations,
        }
    }

    fn rotation(id: &str, old: &DeviceKey, new: &DeviceKey, signed: bool) -> KeyRotation {
        let (o, n) = (old.public_key(), new.public_key());
        let signature = signed.then(|| old.sign_b64(&rotation_statement(id, &o, &n).unwrap()));
        KeyRotation { old: o.to_b64(), new: n.to_b64(), signature }
    }

    #[test]
    fn the_confirmed_key_is_accepted_and_others_are_not() {
        let k1 = DeviceKey::generate().unwrap();
        let other = DeviceKey::generate().unwrap();
        let keys = keys_of("b", &k1, vec![]);
        assert_eq!(current_key(&keys, &k1.public_key()).unwrap(), k1.public_key());
        assert!(matches!(current_key(&keys, &other.public_key()), Err(TrustedError::KeyChanged { .. })));
        let revoked = DeviceKeys { status: "revoked".into(), ..keys };
        assert!(matches!(current_key(&revoked, &k1.public_key()), Err(TrustedError::Revoked(_))));
    }

    #[test]
    fn trust_follows_signed_rotations_only() {
        let (k1, k2, k3) =
            (DeviceKey::generate().unwrap(), DeviceKey::generate().unwrap(), DeviceKey::generate().unwrap());
        let t = k1.public_key();
        let chained = keys_of("b", &k3, vec![rotation("b", &k1, &k2, true), rotation("b", &k2, &k3, true)]);
        assert_eq!(current_key(&chained, &t).unwrap(), k3.public_key());
        let unchained = keys_of("b", &k3, vec![rotation("b", &k1, &k2, true), rotation("b", &k2, &k3, false)]);
        assert!(matches!(current_key(&unchained, &t), Err(TrustedError::KeyChanged { .. })));
        // A signature the server made up (by a key not the old one) does not chain.
        let mut forged = rotation("b", &k1, &k2, true);
        forged.signature = Some(k2.sign_b64(b"anything"));
        assert!(current_key(&keys_of("b", &k2, vec![forged]), &t).is_err());
        // A rotation signed for another device does not chain.
        let elsewhere = rotation("c", &k1, &k2, true);
        assert!(current_key(&keys_of("b", &k2, vec![elsewhere]), &t).is_err());
    }

    #[test]
    fn a_session_key_must_be_signed_by_the_device_key() {
        let k = DeviceKey::generate().unwrap();
        let keys = keys_of("b", &k, vec![]);
        let pk = k.public_key();
        assert_eq!(session_key_of(&keys, &pk).unwrap(), k.session_key_pair().public);
        let other = DeviceKey::generate().unwrap();
        assert!(matches!(session_key_of(&keys, &other.public_key()), Err(TrustedError::SessionKey { .. })));
        let mut swapped = keys.clone();
        if let Some(sk) = swapped.session_key.as_mut() {
            sk.key = URL_SAFE_NO_PAD.encode(other.session_key_pair().public);
        }
        assert!(session_key_of(&swapped, &pk).is_err(), "a key swapped in by the server is refused");
        let none = DeviceKeys { session_key: None, ..keys.clone() };
        assert!(session_key_of(&none, &pk).is_err());
        let mut old = keys;
        if let Some(sk) = old.session_key.as_mut() {
            sk.protocol = PROTOCOL_VERSION + 1;
        }
        assert!(session_key_of(&old, &pk).is_err());
    }

    fn device(dir: &std::path::Path, id: &str, key: &Arc<DeviceKey>) -> TrustedDevice {
        let client = Client::new("http://127.0.0.1:9").unwrap();
        TrustedDevice::new(client, key.clone(), id, "token", dir.join(id))
    }

    #[test]
    fn checking_a_device_needs_local_trust_and_moves_it_along_signed_rotations() {
        let dir = std::env::temp_dir().join(format!("latchkey-trusted-{}", uuid::Uuid::new_v4().simple()));
        let a = device(&dir, "a", &Arc::new(DeviceKey::generate().unwrap()));
        let (k1, k2) = (DeviceKey::generate().unwrap(), DeviceKey::generate().unwrap());
        let before = keys_of("b", &k1, vec![]);
        assert!(matches!(a.check_device(&before), Err(TrustedError::NotTrusted(_))));
        a.store().set_trusted("b", &k1.public_key(), "b", 1).unwrap();
        assert_eq!(a.check_device(&before).unwrap(), k1.public_key());
        let after = keys_of("b", &k2, vec![rotation("b", &k1, &k2, true)]);
        assert_eq!(a.check_device(&after).unwrap(), k2.public_key());
        assert_eq!(a.store().trusted_key("b").unwrap(), Some(k2.public_key()), "the store follows the chain");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn invitations_go_to_trusted_members_and_open_there() {
        let dir = std::env::temp_dir().join(format!("latchkey-trusted-{}", uuid::Uuid::new_v4().simple()));
        let (ka, kb, kc) = (
            Arc::new(DeviceKey::generate().unwrap()),
            Arc::new(DeviceKey::generate().unwrap()),
            Arc::new(DeviceKey::generate().unwrap()),
        );
        let a = device(&dir, "a", &ka);
        let b = device(&dir, "b", &kb);
        let d = Descriptor {
            session_id: "s1".into(),
            creator: "a".into(),
            members: vec!["a".into(), "b".into(), "c".into()],
            epoch: 1,
            protocol: PROTOCOL_VERSION,
            expires_at: now_ms() + 60_000,
        };
        let members = vec![keys_of("a", &ka, vec![]), keys_of("b", &kb, vec![]), keys_of("c", &kc, vec![])];
        let key = SessionKey::generate().unwrap();
        a.store().set_trusted("b", &kb.public_key(), "b", 1).unwrap();
        assert!(matches!(a.invitations(&d, &key, &members, None), Err(TrustedError::NotTrusted(c)) if c == "c"));
        a.store().set_trusted("c", &kc.public_key(), "c", 1).unwrap();
        let invs = a.invitations(&d, &key, &members, None).unwrap();
        assert_eq!(invs.iter().map(|i| i.invitation.recipient.as_str()).collect::<Vec<_>>(), vec!["b", "c"]);
        let only = a.invitations(&d, &key, &members, Some("c")).unwrap();
        assert_eq!(only.len(), 1);
        // The server's own check of a complete set passes.
        latchkey_domain::trusted_session::check_issue(
            &d,
            "a",
            &ka.public_key(),
            &invs,
            Timestamp::from_millis(now_ms()),
        )
        .unwrap();
        // b checks what a sent and opens it.
        let for_b = &invs[0];
        check_invitation(for_b, &ka.public_key(), "b", Timestamp::from_millis(now_ms())).unwrap();
        assert_eq!(open_session_key(&for_b.invitation, &b.device_key().session_key_pair()).unwrap(), key);
        // Messages a sends with the key, b decrypts once it holds it.
        a.store().put_key(&d, &key, now_ms()).unwrap();
        b.store().put_key(&d, &key, now_ms()).unwrap();
        let body = encrypt_message(&key, "s1", 1, "a", 1, b"hi").unwrap();
        let got = b.decrypt(9, "s1", "a", 1, 1, &body).unwrap();
        assert_eq!(got.plaintext, b"hi");
        assert!(matches!(b.decrypt(9, "s1", "a", 1, 2, &body), Err(TrustedError::NoKey(_))));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn live_members_are_the_invited_and_joined() {
        let member = |id: &str, status: &str| MemberInfo { device_id: id.into(), status: status.into() };
        let info = SessionInfo {
            id: "s".into(),
            creator: "a".into(),
            status: "open".into(),
            epoch: 2,
            rekey_needed: true,
            expires_at_ms: 0,
            members: vec![member("c", "joined"), member("a", "joined"), member("b", "left"), member("d", "invited")],
        };
        assert_eq!(live_members(&info), vec!["a", "c", "d"]);
    }
}
