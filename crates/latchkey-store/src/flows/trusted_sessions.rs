//! Automatic sessions between trusted devices: plan, make, join, relay, leave.
//!
//! Who may be invited is `latchkey_domain::trusted_session::plan_targets`;
//! invitations are checked with `check_issue` before anything is stored.
//! Every change to a session appends to its user's relay log (one position
//! per change, from the user's log head held for the transaction) and wakes
//! the channels of its members.

use crate::events;
use crate::flows::trust::{device_keys, known, mutual, Known};
use crate::trust_records::*;
use crate::txn::Txn;
use latchkey_domain::trust::PROTOCOL_VERSION;
use latchkey_domain::trusted_session::{
    check_each, check_issue, check_join, check_relay, join_statement, plan_removal, plan_targets, Descriptor,
    InvitationError, MemberStatus, Removal, Resolved, TargetFacts, BACKLOG, MAX_SESSION_SECS,
};
use latchkey_domain::Timestamp;

/// How long a channel counts as held after it was last seen; channels are
/// marked seen far more often than this.
pub const PRESENCE_LEASE_MS: i64 = 45_000;

/// Housekeeping cut-offs at `now`: sessions closed before the first are
/// deleted (a day after, with their log and invitations); channels not seen
/// since the second belonged to a server that stopped without closing them.
pub fn trusted_cutoffs(now: Timestamp) -> (Timestamp, Timestamp) {
    (now.plus_secs(-86_400), now.plus_millis(-2 * PRESENCE_LEASE_MS))
}

/// The wake-up subject of a user's channels: every change to the user's
/// sessions wakes each of the user's open channels, which then look for what
/// is theirs.
pub fn channel_subject(user_id: &str) -> String {
    format!("channel:{user_id}")
}

async fn facts<T: Txn>(tx: &T, creator: &Known, target: &Known, now: Timestamp) -> Result<TargetFacts, T::Error> {
    let current = target.key.to_b64();
    let compatible = tx
        .session_key(&target.device.id)
        .await?
        .is_some_and(|k| k.protocol == PROTOCOL_VERSION && k.signed_by == current);
    let connections = tx.channel_count(&target.device.id, now.plus_millis(-PRESENCE_LEASE_MS)).await?;
    Ok(TargetFacts {
        id: target.device.id.clone(),
        active: target.device.status == latchkey_domain::device::DeviceStatus::Active,
        compatible,
        trust: mutual(tx, creator, target).await?,
        connections: u32::try_from(connections).unwrap_or(u32::MAX),
    })
}

/// One answer per target and, when the session can be made, what to sign and whom to seal to.
pub async fn plan<T: Txn>(tx: &T, ask: &SessionAsk, now: Timestamp) -> Result<SessionPlanned, T::Error> {
    let Some(creator) = known(tx, &ask.user_id, &ask.creator).await? else {
        return Ok(SessionPlanned { targets: Vec::new(), descriptor: None, members: Vec::new() });
    };
    let mut resolved = Vec::with_capacity(ask.targets.len());
    for target in &ask.targets {
        let r = match known(tx, &ask.user_id, target).await? {
            Some(k) => Resolved::Device(facts(tx, &creator, &k, now).await?),
            None => {
                let by_slug = tx.devices_with_slug(&ask.user_id, target).await?;
                match by_slug.as_slice() {
                    [] => Resolved::Unknown,
                    [one] => match known(tx, &ask.user_id, &one.id).await? {
                        Some(k) => Resolved::Device(facts(tx, &creator, &k, now).await?),
                        None => Resolved::Unknown,
                    },
                    _ => Resolved::AmbiguousName,
                }
            }
        };
        resolved.push((target.clone(), r));
    }
    let plan = plan_targets(&ask.creator, &resolved, ask.options);
    let targets = plan
        .outcomes
        .into_iter()
        .map(|(target, device_id, outcome)| TargetAnswer { target, device_id, outcome })
        .collect();
    if !plan.create {
        return Ok(SessionPlanned { targets, descriptor: None, members: Vec::new() });
    }
    let ttl = ask.ttl_secs.clamp(1, MAX_SESSION_SECS);
    let descriptor = Descriptor {
        session_id: ask.session_id.clone(),
        creator: ask.creator.clone(),
        members: plan.members.clone(),
        epoch: 1,
        protocol: PROTOCOL_VERSION,
        expires_at: now.plus_secs(ttl).as_millis(),
    };
    let mut members = Vec::with_capacity(plan.members.len());
    for m in &plan.members {
        if let Some(keys) = device_keys(tx, &ask.user_id, m).await? {
            members.push(keys);
        }
    }
    Ok(SessionPlanned { targets, descriptor: Some(descriptor), members })
}

/// Makes a planned session: its members must all still pass, and the
/// invitations must be the creator's, one per member, for this descriptor.
pub async fn create<T: Txn>(
    tx: &T,
    user_id: &str,
    creator: &str,
    descriptor: &Descriptor,
    invitations: &[latchkey_domain::trusted_session::SignedInvitation],
    member_limit: usize,
    now: Timestamp,
) -> Result<Result<SessionMade, SessionRefusal>, T::Error> {
    if descriptor.creator != creator
        || descriptor.epoch != 1
        || descriptor.protocol != PROTOCOL_VERSION
        || descriptor.expires_at <= now.as_millis()
        || descriptor.expires_at > now.plus_secs(MAX_SESSION_SECS).as_millis()
    {
        return Ok(Err(SessionRefusal::Invitation(InvitationError::Descriptor)));
    }
    let Some(me) = known(tx, user_id, creator).await? else { return Ok(Err(SessionRefusal::NotMember)) };
    // The same checks as the plan, again, inside this transaction: trust may have changed since.
    let ask = SessionAsk {
        user_id: user_id.to_string(),
        creator: creator.to_string(),
        targets: descriptor.members.iter().filter(|m| *m != creator).cloned().collect(),
        options: latchkey_domain::trusted_session::SessionOptions { partial: false, online_only: false, member_limit },
        session_id: descriptor.session_id.clone(),
        ttl_secs: 1,
    };
    let replanned = plan(tx, &ask, now).await?;
    let all_pass = replanned.descriptor.as_ref().is_some_and(|d| d.members == descriptor.members);
    if !all_pass {
        return Ok(Ok(SessionMade::Refused(replanned.targets)));
    }
    if let Err(e) = check_issue(descriptor, creator, &me.key, invitations, now) {
        return Ok(Err(SessionRefusal::Invitation(e)));
    }
    if tx.session(&descriptor.session_id, false).await?.is_some() {
        return Ok(Err(SessionRefusal::Invitation(InvitationError::Descriptor)));
    }
    if !nonces_fresh(tx, invitations).await? {
        return Ok(Err(SessionRefusal::InvitationUsed));
    }
    let session = TrustedSessionRecord {
        id: descriptor.session_id.clone(),
        user_id: user_id.to_string(),
        creator: creator.to_string(),
        epoch: 1,
        protocol: PROTOCOL_VERSION,
        rekey_needed: false,
        created_at: now,
        expires_at: Timestamp::from_millis(descriptor.expires_at),
        closed_at: None,
        members: Vec::new(),
    };
    tx.insert_session(&session).await?;
    for m in &descriptor.members {
        let (status, epoch) =
            if m == creator { (MemberStatus::Joined, Some(1)) } else { (MemberStatus::Invited, None) };
        tx.insert_member(&session.id, m, status.as_str(), epoch, now).await?;
    }
    insert_invitations(tx, invitations).await?;
    tx.append_audit(&events::session_created(user_id, &session.id, creator, &descriptor.members), now).await?;
    wake(tx, user_id).await?;
    let made = loaded(tx, session).await?;
    Ok(Ok(SessionMade::Made(replanned.targets, Box::new(made))))
}

/// Whether no nonce of `invitations` was ever stored (checked before anything is written).
async fn nonces_fresh<T: Txn>(
    tx: &T,
    invitations: &[latchkey_domain::trusted_session::SignedInvitation],
) -> Result<bool, T::Error> {
    for inv in invitations {
        if tx.invitation(&inv.invitation.nonce).await?.is_some() {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn insert_invitations<T: Txn>(
    tx: &T,
    invitations: &[latchkey_domain::trusted_session::SignedInvitation],
) -> Result<(), T::Error> {
    for inv in invitations {
        tx.insert_invitation(inv).await?;
    }
    Ok(())
}

async fn wake<T: Txn>(tx: &T, user_id: &str) -> Result<(), T::Error> {
    tx.announce_decided(&channel_subject(user_id)).await
}

async fn loaded<T: Txn>(tx: &T, mut s: TrustedSessionRecord) -> Result<TrustedSessionRecord, T::Error> {
    s.members = tx.members(&s.id).await?.into_iter().map(|(d, st, _)| (d, st)).collect();
    Ok(s)
}

/// A session the device is (or was) a member of, with its members.
pub async fn get<T: Txn>(tx: &T, session_id: &str, device_id: &str) -> Result<Option<TrustedSessionRecord>, T::Error> {
    let Some(s) = tx.session(session_id, false).await? else { return Ok(None) };
    let s = loaded(tx, s).await?;
    Ok(s.member(device_id).is_some().then_some(s))
}

/// The open sessions a device is a current member of, with their members.
pub async fn list<T: Txn>(tx: &T, device_id: &str, now: Timestamp) -> Result<Vec<TrustedSessionRecord>, T::Error> {
    let mut out = Vec::new();
    for s in tx.sessions_of_device(device_id, now).await? {
        out.push(loaded(tx, s).await?);
    }
    Ok(out)
}

/// Appends one entry to the user's relay log at the next position.
async fn append<T: Txn>(tx: &T, user_id: &str, mut entry: LogEntry, now: Timestamp) -> Result<i64, T::Error> {
    tx.ensure_log_head(user_id).await?;
    let pos = tx.log_head(user_id, true).await? + 1;
    entry.pos = pos;
    tx.insert_log(user_id, &entry, now).await?;
    tx.set_log_head(user_id, pos).await?;
    Ok(pos)
}

fn event(session: &TrustedSessionRecord, name: &str, device: Option<&str>) -> LogEntry {
    LogEntry {
        pos: 0,
        session_id: session.id.clone(),
        epoch: session.epoch,
        message: None,
        event: Some((name.to_string(), device.map(str::to_string))),
    }
}

/// Issues invitations at the session's current key generation: the full set
/// when members changed (a new key), or fresh ones for members whose
/// invitation expired before they came online.
pub async fn issue<T: Txn>(
    tx: &T,
    user_id: &str,
    issue: &Issue,
    now: Timestamp,
) -> Result<Result<(), SessionRefusal>, T::Error> {
    let Some(s) = tx.session(&issue.session_id, true).await? else { return Ok(Err(SessionRefusal::NotFound)) };
    let s = loaded(tx, s).await?;
    if s.user_id != user_id || s.member(&issue.sender).is_none() {
        return Ok(Err(SessionRefusal::NotFound));
    }
    if s.status(now) != "open" {
        return Ok(Err(SessionRefusal::Ended));
    }
    if s.member(&issue.sender) != Some(MemberStatus::Joined) {
        return Ok(Err(SessionRefusal::NotMember));
    }
    let Some(sender) = known(tx, user_id, &issue.sender).await? else {
        return Ok(Err(SessionRefusal::NotMember));
    };
    let expected = s.descriptor();
    if issue.descriptor != expected {
        return Ok(Err(SessionRefusal::Invitation(InvitationError::Descriptor)));
    }
    if s.rekey_needed {
        if let Err(e) = check_issue(&expected, &issue.sender, &sender.key, &issue.invitations, now) {
            return Ok(Err(SessionRefusal::Invitation(e)));
        }
        if !nonces_fresh(tx, &issue.invitations).await? {
            return Ok(Err(SessionRefusal::InvitationUsed));
        }
        insert_invitations(tx, &issue.invitations).await?;
        tx.set_session_epoch(&s.id, s.epoch, false).await?;
        // The sender holds the new key already.
        tx.set_member(&s.id, &issue.sender, MemberStatus::Joined.as_str(), Some(s.epoch), now).await?;
        append(tx, user_id, event(&s, "rekeyed", Some(&issue.sender)), now).await?;
        tx.append_audit(&events::session_rekeyed(user_id, &s.id, &issue.sender, s.epoch), now).await?;
    } else {
        let recipients = match check_each(&expected, &issue.sender, &sender.key, &issue.invitations, now) {
            Ok(r) => r,
            Err(e) => return Ok(Err(SessionRefusal::Invitation(e))),
        };
        if recipients.is_empty() {
            return Ok(Err(SessionRefusal::NotNeeded));
        }
        for r in &recipients {
            // Only a member still waiting, whose invitation has lapsed, gets a fresh one.
            let waiting = s.member(r) == Some(MemberStatus::Invited);
            if !waiting || tx.has_pending_invitation(&s.id, r, now).await? {
                return Ok(Err(SessionRefusal::NotNeeded));
            }
        }
        if !nonces_fresh(tx, &issue.invitations).await? {
            return Ok(Err(SessionRefusal::InvitationUsed));
        }
        insert_invitations(tx, &issue.invitations).await?;
    }
    wake(tx, &s.user_id).await?;
    Ok(Ok(()))
}

/// Accepts an invitation: once, in date, at the current key, signed by the member's own key.
pub async fn join<T: Txn>(
    tx: &T,
    user_id: &str,
    j: &Join,
    now: Timestamp,
) -> Result<Result<TrustedSessionRecord, SessionRefusal>, T::Error> {
    let Some(inv) = tx.invitation(&j.nonce).await? else { return Ok(Err(SessionRefusal::UnknownInvitation)) };
    if inv.recipient != j.device_id || inv.session_id != j.session_id {
        return Ok(Err(SessionRefusal::UnknownInvitation));
    }
    if inv.used_at.is_some() {
        return Ok(Err(SessionRefusal::InvitationUsed));
    }
    let Some(s) = tx.session(&j.session_id, true).await? else { return Ok(Err(SessionRefusal::NotFound)) };
    let s = loaded(tx, s).await?;
    if s.user_id != user_id {
        return Ok(Err(SessionRefusal::NotFound));
    }
    let first = match check_join(&s.state(), s.member(&j.device_id), inv.epoch, inv.expires_at, now) {
        Ok(first) => first,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let Some(me) = known(tx, user_id, &j.device_id).await? else { return Ok(Err(SessionRefusal::NotMember)) };
    let statement = join_statement(&s.id, s.epoch, &j.device_id, &j.nonce);
    if me.key.verify_b64(&statement, &j.signature).is_err() {
        return Ok(Err(SessionRefusal::BadSignature));
    }
    if !tx.use_invitation(&j.nonce, now).await? {
        return Ok(Err(SessionRefusal::InvitationUsed));
    }
    tx.set_member(&s.id, &j.device_id, MemberStatus::Joined.as_str(), Some(s.epoch), now).await?;
    if first {
        append(tx, user_id, event(&s, "member_joined", Some(&j.device_id)), now).await?;
        tx.append_audit(&events::session_joined(user_id, &s.id, &j.device_id, s.epoch), now).await?;
    }
    wake(tx, &s.user_id).await?;
    Ok(Ok(loaded(tx, s).await?))
}

/// Takes a member out (`status` left or removed), as `plan_removal` says: the
/// others must get a new key before messages flow again; a session left with
/// one member ends.
/// Whether it was a current member.
pub async fn remove_member<T: Txn>(
    tx: &T,
    session_id: &str,
    device_id: &str,
    status: MemberStatus,
    actor: &str,
    now: Timestamp,
) -> Result<bool, T::Error> {
    let Some(s) = tx.session(session_id, true).await? else { return Ok(false) };
    let mut s = loaded(tx, s).await?;
    let remaining = s.current_members().iter().filter(|m| *m != device_id).count();
    let plan = plan_removal(&s.state(), s.member(device_id), remaining);
    if plan == Removal::Nothing {
        return Ok(false);
    }
    tx.set_member(session_id, device_id, status.as_str(), None, now).await?;
    let name = if status == MemberStatus::Left { "member_left" } else { "member_removed" };
    append(tx, &s.user_id.clone(), event(&s, name, Some(device_id)), now).await?;
    tx.append_audit(&events::session_member_removed(actor, session_id, device_id, status.as_str()), now).await?;
    match plan {
        Removal::Close => end(tx, &s, actor, now).await?,
        Removal::Rekey { epoch } => {
            s.epoch = epoch;
            tx.set_session_epoch(session_id, epoch, true).await?;
            append(tx, &s.user_id.clone(), event(&s, "rekey_needed", None), now).await?;
        }
        Removal::Nothing => {}
    }
    wake(tx, &s.user_id).await?;
    Ok(true)
}

async fn end<T: Txn>(tx: &T, s: &TrustedSessionRecord, actor: &str, now: Timestamp) -> Result<(), T::Error> {
    if tx.close_session(&s.id, now).await? {
        append(tx, &s.user_id, event(s, "closed", None), now).await?;
        tx.append_audit(&events::session_closed(actor, &s.id), now).await?;
    }
    Ok(())
}

/// Closes sessions past their end (a batch per sweep), each recorded as closed by
/// `system` and told to its members. The users whose sessions ended.
pub async fn expire<T: Txn>(tx: &T, now: Timestamp) -> Result<Vec<String>, T::Error> {
    let mut users = Vec::new();
    for s in tx.expired_sessions(now, 500).await? {
        end(tx, &s, "system", now).await?;
        wake(tx, &s.user_id).await?;
        users.push(s.user_id);
    }
    Ok(users)
}

/// Takes a device out of every open session it is in (revoked, or its key changed without a chain).
pub async fn remove_everywhere<T: Txn>(
    tx: &T,
    device_id: &str,
    status: MemberStatus,
    actor: &str,
    now: Timestamp,
) -> Result<(), T::Error> {
    for session_id in tx.open_sessions_with_member(device_id).await? {
        remove_member(tx, &session_id, device_id, status, actor, now).await?;
    }
    Ok(())
}

/// The calling member leaves.
pub async fn leave<T: Txn>(
    tx: &T,
    user_id: &str,
    session_id: &str,
    device_id: &str,
    now: Timestamp,
) -> Result<Result<(), SessionRefusal>, T::Error> {
    match get(tx, session_id, device_id).await? {
        Some(s) if s.user_id == user_id => {
            if remove_member(tx, session_id, device_id, MemberStatus::Left, user_id, now).await? {
                Ok(Ok(()))
            } else {
                Ok(Err(SessionRefusal::NotMember))
            }
        }
        _ => Ok(Err(SessionRefusal::NotFound)),
    }
}

/// The creator closes its session.
pub async fn close<T: Txn>(
    tx: &T,
    user_id: &str,
    session_id: &str,
    device_id: &str,
    now: Timestamp,
) -> Result<Result<(), SessionRefusal>, T::Error> {
    let Some(s) = tx.session(session_id, true).await? else { return Ok(Err(SessionRefusal::NotFound)) };
    let s = loaded(tx, s).await?;
    if s.user_id != user_id || s.member(device_id).is_none() {
        return Ok(Err(SessionRefusal::NotFound));
    }
    if s.creator != device_id {
        return Ok(Err(SessionRefusal::NotCreator));
    }
    if s.closed_at.is_some() {
        return Ok(Err(SessionRefusal::Ended));
    }
    end(tx, &s, user_id, now).await?;
    wake(tx, &s.user_id).await?;
    Ok(Ok(()))
}

/// Relays a member's message: at the current key, next in the sender's order.
pub async fn relay<T: Txn>(
    tx: &T,
    user_id: &str,
    r: &Relay,
    now: Timestamp,
) -> Result<Result<i64, SessionRefusal>, T::Error> {
    // The log head first: it orders every change of the user's sessions.
    tx.ensure_log_head(user_id).await?;
    tx.log_head(user_id, true).await?;
    let Some(s) = get(tx, &r.session_id, &r.sender).await? else { return Ok(Err(SessionRefusal::NotFound)) };
    if s.user_id != user_id {
        return Ok(Err(SessionRefusal::NotFound));
    }
    let last_seq = tx.member_seq(&s.id, &r.sender).await?;
    if let Err(refusal) = check_relay(&s.state(), s.member(&r.sender), r.epoch, r.seq, last_seq, now) {
        return Ok(Err(refusal));
    }
    let entry = LogEntry {
        pos: 0,
        session_id: s.id.clone(),
        epoch: s.epoch,
        message: Some((r.sender.clone(), r.seq, r.body.clone())),
        event: None,
    };
    let pos = append(tx, user_id, entry, now).await?;
    tx.set_member_seq(&s.id, &r.sender, r.seq).await?;
    // Pruning walks the session's newest messages: every 16th message is often
    // enough (the backlog then holds up to BACKLOG + 15).
    if pos % 16 == 0 && tx.prune_log(&s.id, BACKLOG).await? > 0 {
        tx.set_pruned(&s.id).await?;
    }
    wake(tx, user_id).await?;
    Ok(Ok(pos))
}

/// What a device's channel delivers after `after`: its pending invitations
/// and the log entries it may see.
pub async fn channel_batch<T: Txn>(
    tx: &T,
    user_id: &str,
    device_id: &str,
    after: i64,
    limit: i64,
    now: Timestamp,
) -> Result<ChannelBatch, T::Error> {
    // The head first: an entry at or below it was committed with it, so is visible
    // below; once this read is complete, the device has seen everything up to it,
    // including other sessions' entries, and never reads past them again. Not while
    // it is invited somewhere: messages sent before it joins become its to read.
    let head = tx.log_head(user_id, false).await?;
    let waiting = tx.invited_count(device_id).await? > 0;
    let invitations = tx.pending_invitations(device_id, now).await?;
    let entries = tx.log_after(device_id, user_id, after, limit).await?;
    let last = entries.last().map_or(after, |e| e.pos);
    let seen_up_to = if (entries.len() as i64) < limit && !waiting { last.max(head) } else { last };
    // Messages after the cursor may have been dropped from a session's backlog.
    let pruned = tx.channel_gap(device_id).await?;
    let gap = (pruned > after + 1).then_some(pruned);
    Ok(ChannelBatch { invitations, entries, gap, seen_up_to })
}

/// A device opens its channel: it is online. Members that hold the key are
/// asked for a fresh invitation where this device's expired while it was away.
pub async fn open_channel<T: Txn>(
    tx: &T,
    user_id: &str,
    device_id: &str,
    channel_id: &str,
    now: Timestamp,
) -> Result<(), T::Error> {
    tx.insert_channel(channel_id, device_id, now).await?;
    for s in tx.sessions_of_device(device_id, now).await? {
        let s = loaded(tx, s).await?;
        let waiting = s.member(device_id) == Some(MemberStatus::Invited);
        if waiting && !s.rekey_needed && !tx.has_pending_invitation(&s.id, device_id, now).await? {
            append(tx, user_id, event(&s, "invitation_needed", Some(device_id)), now).await?;
            wake(tx, &s.user_id).await?;
        }
    }
    Ok(())
}
