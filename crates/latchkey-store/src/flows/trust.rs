//! Trust between a user's devices: session keys, trust statements, key rotation.
//!
//! Signatures are checked here, inside the transaction that stores them,
//! against the key the device holds at that moment; the rules of what holds
//! are `latchkey_domain::trust`.

use crate::events;
use crate::flows::{tokens, trusted_sessions};
use crate::records::*;
use crate::trust_records::*;
use crate::txn::{NewFamily, Txn};
use latchkey_domain::device::DeviceStatus;
use latchkey_domain::trust::{self, Party, PublicKey, Rotation, Statement, PROTOCOL_VERSION};
use latchkey_domain::trusted_session::MemberStatus;
use latchkey_domain::Timestamp;
use std::collections::HashMap;

/// A device's current key, read from its JWK.
pub fn key_of(d: &DeviceRecord) -> Option<PublicKey> {
    let jwk: serde_json::Value = serde_json::from_str(d.public_jwk.as_deref()?).ok()?;
    PublicKey::from_jwk(&jwk).ok()
}

fn parse_rotations(records: &[RotationRecord]) -> Vec<Rotation> {
    records
        .iter()
        .filter_map(|r| {
            Some(Rotation {
                old: PublicKey::from_b64(&r.old_key).ok()?,
                new: PublicKey::from_b64(&r.new_key).ok()?,
                chained: r.signature.is_some(),
            })
        })
        .collect()
}

/// A device as trust sees it: status, current key, rotations.
pub struct Known {
    /// The device.
    pub device: DeviceRecord,
    /// Its current key.
    pub key: PublicKey,
    /// Its key replacements.
    pub rotations: Vec<Rotation>,
    /// The same, as stored.
    pub rotation_records: Vec<RotationRecord>,
}

impl Known {
    /// The device as a party to trust.
    pub fn party(&self) -> Party<'_> {
        Party {
            id: &self.device.id,
            active: self.device.status == DeviceStatus::Active,
            key: self.key,
            rotations: &self.rotations,
        }
    }
}

/// One of `user_id`'s devices that has a key.
pub async fn known<T: Txn>(tx: &T, user_id: &str, device_id: &str) -> Result<Option<Known>, T::Error> {
    let Some(device) = tx.device(device_id, false).await? else { return Ok(None) };
    if device.owner_id != user_id {
        return Ok(None);
    }
    let Some(key) = key_of(&device) else { return Ok(None) };
    let rotation_records = tx.rotations(device_id).await?;
    let rotations = parse_rotations(&rotation_records);
    Ok(Some(Known { device, key, rotations, rotation_records }))
}

/// Whether two devices trust each other now (`Err` says whose statement is missing).
pub async fn mutual<T: Txn>(
    tx: &T,
    a: &Known,
    b: &Known,
) -> Result<Result<(), latchkey_domain::trust::Missing>, T::Error> {
    let all = tx.trusts_of_user(&a.device.owner_id).await?;
    let between = statements_between(&all, &a.device.id, &b.device.id);
    Ok(trust::mutual(&a.party(), &b.party(), &between))
}

fn statements_between<'a>(all: &'a [TrustRecord], a: &str, b: &str) -> Vec<Statement<'a>> {
    all.iter()
        .filter(|t| (t.truster == a && t.trustee == b) || (t.truster == b && t.trustee == a))
        .filter_map(|t| {
            Some(Statement {
                truster: &t.truster,
                truster_key: PublicKey::from_b64(&t.truster_key).ok()?,
                trustee: &t.trustee,
                trustee_key: PublicKey::from_b64(&t.trustee_key).ok()?,
            })
        })
        .collect()
}

/// A device's keys for another device to check: its session key only if
/// signed by its current key and for this protocol.
pub async fn device_keys<T: Txn>(tx: &T, user_id: &str, device_id: &str) -> Result<Option<DeviceKeysRecord>, T::Error> {
    let Some(device) = tx.device(device_id, false).await? else { return Ok(None) };
    if device.owner_id != user_id {
        return Ok(None);
    }
    let public_key = key_of(&device).map(|k| k.to_b64());
    let session_key = match &public_key {
        Some(current) => tx.session_key(device_id).await?.filter(|k| &k.signed_by == current),
        None => None,
    };
    let rotations = tx.rotations(device_id).await?;
    Ok(Some(DeviceKeysRecord { device, public_key, session_key, rotations }))
}

/// Publishes the calling device's session key after checking its device key signed it.
pub async fn publish_session_key<T: Txn>(
    tx: &T,
    user_id: &str,
    device_id: &str,
    key: &SessionKeyRecord,
    now: Timestamp,
) -> Result<Result<(), TrustRefusal>, T::Error> {
    let Some(me) = known(tx, user_id, device_id).await? else { return Ok(Err(TrustRefusal::UnknownDevice)) };
    if me.device.status != DeviceStatus::Active {
        return Ok(Err(TrustRefusal::Revoked));
    }
    if key.protocol != PROTOCOL_VERSION {
        return Ok(Err(TrustRefusal::Invalid(format!("protocol {} is not spoken here", key.protocol))));
    }
    let raw = match trust::parse_session_key(&key.key) {
        Ok(raw) => raw,
        Err(e) => return Ok(Err(TrustRefusal::Invalid(e.to_string()))),
    };
    let statement = match trust::session_key_statement(device_id, key.protocol, &raw) {
        Ok(s) => s,
        Err(e) => return Ok(Err(TrustRefusal::Invalid(e.to_string()))),
    };
    if me.key.verify_b64(&statement, &key.signature).is_err() {
        return Ok(Err(TrustRefusal::BadSignature));
    }
    let stored = SessionKeyRecord { signed_by: me.key.to_b64(), ..key.clone() };
    tx.upsert_session_key(device_id, &stored, now).await?;
    Ok(Ok(()))
}

/// Stores the calling device's signed trust in another device's current key.
pub async fn add<T: Txn>(tx: &T, t: &NewTrust, now: Timestamp) -> Result<Result<TrustRecord, TrustRefusal>, T::Error> {
    let Some(truster) = known(tx, &t.user_id, &t.truster).await? else {
        return Ok(Err(TrustRefusal::UnknownDevice));
    };
    let Some(trustee) = known(tx, &t.user_id, &t.trustee).await? else {
        return Ok(Err(TrustRefusal::UnknownDevice));
    };
    if truster.device.id == trustee.device.id {
        return Ok(Err(TrustRefusal::SelfTrust));
    }
    if truster.device.status != DeviceStatus::Active || trustee.device.status != DeviceStatus::Active {
        return Ok(Err(TrustRefusal::Revoked));
    }
    let named = match PublicKey::from_b64(&t.trustee_key) {
        Ok(k) => k,
        Err(e) => return Ok(Err(TrustRefusal::Invalid(e.to_string()))),
    };
    if named != trustee.key {
        return Ok(Err(TrustRefusal::WrongKey));
    }
    let statement = match trust::trust_statement(&t.truster, &t.trustee, &named, t.issued_at) {
        Ok(s) => s,
        Err(e) => return Ok(Err(TrustRefusal::Invalid(e.to_string()))),
    };
    if truster.key.verify_b64(&statement, &t.signature).is_err() {
        return Ok(Err(TrustRefusal::BadSignature));
    }
    tx.upsert_trust(t, &truster.key.to_b64(), now).await?;
    tx.append_audit(&events::trust_added(&t.user_id, &t.truster, &t.trustee, &named), now).await?;
    Ok(Ok(TrustRecord {
        truster: t.truster.clone(),
        truster_name: truster.device.display_name.clone(),
        trustee: t.trustee.clone(),
        trustee_name: trustee.device.display_name.clone(),
        truster_key: truster.key.to_b64(),
        trustee_key: t.trustee_key.clone(),
        created_at: now,
        holds: true,
    }))
}

/// Removes `truster`'s trust in `trustee` (both the user's), and takes each
/// out of the sessions the other made. Whether there was such a statement.
pub async fn remove<T: Txn>(
    tx: &T,
    user_id: &str,
    truster: &str,
    trustee: &str,
    actor: &str,
    now: Timestamp,
) -> Result<bool, T::Error> {
    let Some(d) = tx.device(truster, false).await? else { return Ok(false) };
    if d.owner_id != user_id || !tx.delete_trust(truster, trustee).await? {
        return Ok(false);
    }
    tx.append_audit(&events::trust_removed(actor, truster, trustee), now).await?;
    for (creator, other) in [(truster, trustee), (trustee, truster)] {
        for session_id in tx.open_sessions_with_member(other).await? {
            let Some(s) = tx.session(&session_id, false).await? else { continue };
            if s.creator == creator {
                trusted_sessions::remove_member(tx, &session_id, other, MemberStatus::Removed, actor, now).await?;
            }
        }
    }
    Ok(true)
}

/// Every statement between the user's devices, with whether each holds now.
pub async fn list<T: Txn>(tx: &T, user_id: &str) -> Result<Vec<TrustRecord>, T::Error> {
    let mut all = tx.trusts_of_user(user_id).await?;
    let mut devices: HashMap<String, Option<Known>> = HashMap::new();
    for t in &all {
        for id in [&t.truster, &t.trustee] {
            if !devices.contains_key(id) {
                devices.insert(id.clone(), known(tx, user_id, id).await?);
            }
        }
    }
    for t in &mut all {
        let holds = match (devices.get(&t.truster), devices.get(&t.trustee)) {
            (Some(Some(a)), Some(Some(b))) => {
                match (PublicKey::from_b64(&t.truster_key), PublicKey::from_b64(&t.trustee_key)) {
                    (Ok(truster_key), Ok(trustee_key)) => {
                        let s = Statement { truster: &t.truster, truster_key, trustee: &t.trustee, trustee_key };
                        trust::holds(&s, &a.party(), &b.party())
                            && a.device.status == DeviceStatus::Active
                            && b.device.status == DeviceStatus::Active
                    }
                    _ => false,
                }
            }
            _ => false,
        };
        t.holds = holds;
    }
    Ok(all)
}

/// Replaces a device's key. With the old key's signature over the new one,
/// trust carries over; without, it does not, and the device leaves its
/// sessions. Either way its old tokens end and a family bound to the new key starts.
pub async fn rotate_key<T: Txn>(
    tx: &T,
    r: &RotateKey,
    now: Timestamp,
) -> Result<Result<TokenSubject, TrustRefusal>, T::Error> {
    let Some(me) = known(tx, &r.user_id, &r.device_id).await? else {
        return Ok(Err(TrustRefusal::UnknownDevice));
    };
    if me.device.status != DeviceStatus::Active {
        return Ok(Err(TrustRefusal::Revoked));
    }
    let new = match PublicKey::from_b64(&r.new_key) {
        Ok(k) => k,
        Err(e) => return Ok(Err(TrustRefusal::Invalid(e.to_string()))),
    };
    if new == me.key || me.rotation_records.iter().any(|x| x.old_key == r.new_key) {
        return Ok(Err(TrustRefusal::Invalid("the new key must be one this device never had".into())));
    }
    if let Some(sig) = &r.chain_signature {
        let statement = match trust::rotation_statement(&r.device_id, &me.key, &new) {
            Ok(s) => s,
            Err(e) => return Ok(Err(TrustRefusal::Invalid(e.to_string()))),
        };
        if me.key.verify_b64(&statement, sig).is_err() {
            return Ok(Err(TrustRefusal::BadSignature));
        }
    }
    let rotation =
        RotationRecord { old_key: me.key.to_b64(), new_key: new.to_b64(), signature: r.chain_signature.clone() };
    tx.insert_rotation(&r.device_id, &rotation, now).await?;
    tx.lock_device_families(&r.device_id).await?;
    tx.set_device_key(&r.device_id, &r.new_jwk, &r.new_jkt).await?;
    let ended = tx.set_device_families_revoked(&r.device_id, now).await?;
    let family = NewFamily {
        id: &r.mint.new_family_id,
        client_id: &r.client_id,
        user_id: &r.user_id,
        scope: &r.scope,
        auth_time: now,
        device_id: Some(&r.device_id),
        jkt: Some(&r.new_jkt),
        ip: None,
        user_agent: None,
    };
    let subject = tokens::start_family(tx, &family, r.mint.refresh.as_ref(), now).await?;
    let chained = r.chain_signature.is_some();
    tx.append_audit(&events::device_key_rotated(&r.user_id, &r.device_id, chained, ended), now).await?;
    if !chained {
        trusted_sessions::remove_everywhere(tx, &r.device_id, MemberStatus::Removed, &r.user_id, now).await?;
    }
    Ok(Ok(subject))
}
