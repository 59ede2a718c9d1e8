//! Stored rows turned into records, written once for every backend.
//!
//! A backend runs the statements of [`crate::sql`] and hands each row over
//! through [`Columns`]; the decoding (status texts, timestamps,
//! space-separated lists) happens here, so two backends cannot read the same
//! row two ways.

use crate::passkey_records::*;
use crate::records::*;
use crate::trust_records::*;
use crate::{StoreError, StoreResult};
use latchkey_domain::account::{AccountStatus, FailureRun};
use latchkey_domain::app_settings::IdTokenAlg;
use latchkey_domain::device::{DeviceStatus, EnrollmentKeyState};
use latchkey_domain::device_grant::{GrantState, GrantStatus};
use latchkey_domain::events::{Interval, Observers};
use latchkey_domain::pairing::{PairingState, PairingStatus};
use latchkey_domain::secret::SecretHash;
use latchkey_domain::Timestamp;

/// One result row, read by position: what each backend's row type offers.
pub trait Columns {
    /// A non-null text column.
    fn text(&self, i: usize) -> StoreResult<String>;
    /// A nullable text column.
    fn opt_text(&self, i: usize) -> StoreResult<Option<String>>;
    /// A non-null 64-bit integer column.
    fn int(&self, i: usize) -> StoreResult<i64>;
    /// A nullable 64-bit integer column.
    fn opt_int(&self, i: usize) -> StoreResult<Option<i64>>;
    /// A boolean column (or expression).
    fn flag(&self, i: usize) -> StoreResult<bool>;
    /// A non-null binary column.
    fn bytes(&self, i: usize) -> StoreResult<Vec<u8>>;

    /// A non-null timestamp column (milliseconds since the epoch).
    fn at(&self, i: usize) -> StoreResult<Timestamp> {
        self.int(i).map(Timestamp::from_millis)
    }
    /// A nullable timestamp column.
    fn opt_at(&self, i: usize) -> StoreResult<Option<Timestamp>> {
        Ok(self.opt_int(i)?.map(Timestamp::from_millis))
    }
}

/// Implements [`Columns`] for a backend's row type from one generic getter:
/// `impl_columns!(Row<'_>, |row, i| row.0.try_get(i).map_err(to_store_error))`.
#[macro_export]
macro_rules! impl_columns {
    ($row:ty, |$r:ident, $i:ident| $get:expr) => {
        impl $crate::rows::Columns for $row {
            fn text(&self, $i: usize) -> $crate::StoreResult<String> {
                let $r = self;
                $get
            }
            fn opt_text(&self, $i: usize) -> $crate::StoreResult<Option<String>> {
                let $r = self;
                $get
            }
            fn int(&self, $i: usize) -> $crate::StoreResult<i64> {
                let $r = self;
                $get
            }
            fn opt_int(&self, $i: usize) -> $crate::StoreResult<Option<i64>> {
                let $r = self;
                $get
            }
            fn flag(&self, $i: usize) -> $crate::StoreResult<bool> {
                let $r = self;
                $get
            }
            fn bytes(&self, $i: usize) -> $crate::StoreResult<Vec<u8>> {
                let $r = self;
                $get
            }
        }
    };
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown {what} {value:?}"))
}

/// A device grant from [`crate::sql::GRANT_BY_DEVICE_CODE`].
pub fn device_grant(r: &impl Columns) -> StoreResult<DeviceGrantRecord> {
    let status = r.text(3)?;
    let status = GrantStatus::parse(&status).ok_or_else(|| corrupt("grant status", &status))?;
    Ok(DeviceGrantRecord {
        id: r.text(0)?,
        client_id: r.text(1)?,
        scope: r.text(2)?,
        state: GrantState { status, expires_at: r.at(5)?, interval_secs: r.int(6)?, last_polled_at: r.opt_at(7)? },
        created_at: r.at(4)?,
        requester: Requester { ip: r.text(8)?, user_agent: r.text(9)?, device_name: r.opt_text(10)? },
        user_id: r.opt_text(11)?,
        decided_at: r.opt_at(12)?,
        device: DeviceRequest {
            slug: r.opt_text(13)?,
            location: r.opt_text(14)?,
            platform: r.text(15)?,
            client_version: r.text(16)?,
            public_jwk: r.opt_text(17)?,
            jkt: r.opt_text(18)?,
        },
        device_id: r.opt_text(19)?,
    })
}

/// A device from [`crate::sql::DEVICE`].
pub fn device(r: &impl Columns) -> StoreResult<DeviceRecord> {
    let status = r.text(9)?;
    let status = DeviceStatus::parse(&status).ok_or_else(|| corrupt("device status", &status))?;
    Ok(DeviceRecord {
        id: r.text(0)?,
        owner_id: r.text(1)?,
        display_name: r.text(2)?,
        slug: r.text(3)?,
        location: r.opt_text(4)?,
        platform: r.text(5)?,
        client_version: r.text(6)?,
        created_at: r.at(7)?,
        last_seen_at: r.opt_at(8)?,
        status,
        revoked_at: r.opt_at(10)?,
        public_jwk: r.opt_text(11)?,
        jkt: r.opt_text(12)?,
    })
}

/// The status column of `devices`, alone.
pub fn device_status(r: &impl Columns) -> StoreResult<DeviceStatus> {
    let status = r.text(0)?;
    DeviceStatus::parse(&status).ok_or_else(|| corrupt("device status", &status))
}

/// A QR sign-in pairing from [`crate::sql::PAIRING_BY_PHONE_CODE`].
pub fn pairing(r: &impl Columns) -> StoreResult<PairingRecord> {
    let status = r.text(2)?;
    let status = PairingStatus::parse(&status).ok_or_else(|| corrupt("pairing status", &status))?;
    Ok(PairingRecord {
        id: r.text(0)?,
        client_id: r.text(1)?,
        state: PairingState { status, expires_at: r.at(4)? },
        created_at: r.at(3)?,
        requester: Requester { ip: r.text(5)?, user_agent: r.text(6)?, device_name: None },
        user_id: r.opt_text(7)?,
        decided_at: r.opt_at(8)?,
        continues: r.opt_text(9)?,
    })
}

/// An authorization code, from [`crate::sql::AUTHORIZATION_CODE`].
pub fn authorization_code(r: &impl Columns) -> StoreResult<AuthorizationCodeRecord> {
    Ok(AuthorizationCodeRecord {
        code: NewAuthorizationCode {
            code_hash: SecretHash::from_stored(r.text(0)?),
            client_id: r.text(1)?,
            user_id: r.text(2)?,
            redirect_uri: r.text(3)?,
            scope: r.text(4)?,
            nonce: r.opt_text(5)?,
            code_challenge: r.text(6)?,
            auth_time: r.at(7)?,
            amr: r.text(8)?,
            ip: r.text(9)?,
            user_agent: r.text(10)?,
            expires_at: r.at(11)?,
        },
        used_at: r.opt_at(12)?,
        family_id: r.opt_text(13)?,
    })
}

/// A consent, from [`crate::sql::CONSENT`] and [`crate::sql::CONSENTS_OF`].
pub fn consent(r: &impl Columns) -> StoreResult<ConsentRecord> {
    Ok(ConsentRecord { user_id: r.text(0)?, client_id: r.text(1)?, scope: r.text(2)?, granted_at: r.at(3)? })
}

/// A passkey, from [`crate::sql::PASSKEYS_OF`] and [`crate::sql::PASSKEY_BY_CREDENTIAL`].
pub fn passkey(r: &impl Columns) -> StoreResult<PasskeyRecord> {
    Ok(PasskeyRecord {
        id: r.text(0)?,
        user_id: r.text(1)?,
        credential_id: r.text(2)?,
        passkey: r.text(3)?,
        name: r.text(4)?,
        created_at: r.at(5)?,
        last_used_at: r.opt_at(6)?,
    })
}

/// A taken ceremony's state and person, from [`crate::sql::TAKE_CEREMONY`].
pub fn ceremony(r: &impl Columns) -> StoreResult<CeremonyRecord> {
    Ok(CeremonyRecord { state: r.text(0)?, user_id: r.opt_text(1)? })
}

/// A refresh token and its family's `auth_time`, from [`crate::sql::REFRESH_TOKEN`].
pub fn refresh_token(r: &impl Columns) -> StoreResult<(RefreshTokenRecord, Timestamp)> {
    Ok((
        RefreshTokenRecord {
            family_id: r.text(0)?,
            client_id: r.text(1)?,
            user_id: r.text(2)?,
            username: r.text(3)?,
            scope: r.text(4)?,
            created_at: r.at(5)?,
            expires_at: r.at(6)?,
            rotated_at: r.opt_at(7)?,
            family_revoked: r.flag(8)?,
            device_id: r.opt_text(10)?,
            jkt: r.opt_text(11)?,
        },
        r.at(9)?,
    ))
}

/// An enrollment key from [`crate::sql::ENROLLMENT_KEYS`].
pub fn enrollment_key(r: &impl Columns) -> StoreResult<EnrollmentKeyRecord> {
    Ok(EnrollmentKeyRecord {
        id: r.text(0)?,
        owner_id: r.text(1)?,
        owner_name: r.text(2)?,
        reusable: r.flag(3)?,
        expires_at: r.at(4)?,
        tag: r.opt_text(5)?,
        created_by: r.text(6)?,
        created_at: r.at(7)?,
        revoked_at: r.opt_at(8)?,
        uses: r.int(9)?,
    })
}

/// An enrollment key's ID, owner and state, from [`crate::sql::USABLE_KEY`].
pub fn usable_key(r: &impl Columns) -> StoreResult<UsableKey> {
    Ok(UsableKey {
        id: r.text(0)?,
        owner_id: r.text(1)?,
        state: EnrollmentKeyState { reusable: r.flag(2)?, uses: r.int(3)?, expires_at: r.at(4)?, revoked: r.flag(5)? },
    })
}

/// A user from [`crate::sql::USER_BY_NAME`].
pub fn user(r: &impl Columns) -> StoreResult<UserRecord> {
    Ok(UserRecord {
        id: r.text(0)?,
        username: r.text(1)?,
        password_hash: r.text(2)?,
        is_admin: r.flag(3)?,
        created_at: r.at(4)?,
        status: AccountStatus { disabled_at: r.opt_at(5)?, locked_until: r.opt_at(6)? },
    })
}

/// A session from [`crate::sql::SESSION`]: the user followed by the session's `created_at, expires_at`.
pub fn session(r: &impl Columns) -> StoreResult<SessionRecord> {
    Ok(SessionRecord { user: user(r)?, created_at: r.at(7)?, expires_at: r.at(8)?, id: r.text(9)?, amr: r.text(10)? })
}

/// A sign-in from [`crate::sql::SIGN_INS`].
pub fn sign_in(r: &impl Columns) -> StoreResult<SignInRecord> {
    let kind = r.text(0)?;
    Ok(SignInRecord {
        kind: SignInKind::parse(&kind).ok_or_else(|| corrupt("sign-in kind", &kind))?,
        id: r.text(1)?,
        client_id: r.opt_text(2)?,
        app_name: r.opt_text(3)?,
        ip: r.opt_text(4)?.unwrap_or_default(),
        user_agent: r.opt_text(5)?.unwrap_or_default(),
        created_at: r.at(6)?,
    })
}

/// An app from [`crate::sql::APP`].
pub fn app(r: &impl Columns) -> StoreResult<AppRecord> {
    let kind = r.text(2)?;
    let kind = ClientKind::parse(&kind).ok_or_else(|| corrupt("client kind", &kind))?;
    let grant_types = r
        .text(4)?
        .split(' ')
        .filter(|g| !g.is_empty())
        .map(|g| GrantType::parse(g).ok_or_else(|| corrupt("grant type", g)))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(AppRecord {
        client_id: r.text(0)?,
        display_name: r.text(1)?,
        kind,
        secret_hash: r.opt_text(3)?.map(SecretHash::from_stored),
        grant_types,
        redirect_uris: r.text(5)?.split(' ').filter(|u| !u.is_empty()).map(str::to_string).collect(),
        created_at: r.at(6)?,
        app_url: r.opt_text(7)?,
        qr_sign_in: r.flag(8)?,
        require_dpop: r.flag(9)?,
        post_logout_redirect_uris: r.text(10)?.split(' ').filter(|u| !u.is_empty()).map(str::to_string).collect(),
        id_token_alg: {
            let alg = r.text(11)?;
            IdTokenAlg::parse(&alg).ok_or_else(|| corrupt("ID token algorithm", &alg))?
        },
    })
}

/// An app's grant types or redirect URIs as stored: one space-separated text.
pub fn joined<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(" ")
}

/// A location change from `location, effective_at`.
pub fn location_change(r: &impl Columns) -> StoreResult<LocationChange> {
    Ok(LocationChange { location: r.opt_text(0)?, effective_at: r.at(1)? })
}

/// A stored signing key from `kid, private_sealed, public_key, created_at, retired_at, alg`.
pub fn signing_key(r: &impl Columns) -> StoreResult<crate::at_rest::StoredSigningKey> {
    Ok(crate::at_rest::StoredSigningKey {
        kid: r.text(0)?,
        sealed_private: r.bytes(1)?,
        public_key: r.bytes(2)?,
        created_at: r.at(3)?,
        retired_at: r.opt_at(4)?,
        alg: {
            let alg = r.text(5)?;
            IdTokenAlg::parse(&alg).ok_or_else(|| corrupt("signing key algorithm", &alg))?
        },
    })
}

/// An account's status from `disabled_at, locked_until`.
pub fn account_status(r: &impl Columns) -> StoreResult<AccountStatus> {
    Ok(AccountStatus { disabled_at: r.opt_at(0)?, locked_until: r.opt_at(1)? })
}

/// An account's run of wrong passwords from `failed_sign_ins, first_failure_at`.
pub fn failure_run(r: &impl Columns) -> StoreResult<FailureRun> {
    Ok(FailureRun { count: r.int(0)?, first_at: r.opt_at(1)? })
}

/// Whether a token family is unrevoked, and its account's status, from
/// [`crate::sql::FAMILY_LIVENESS`].
pub fn family_liveness(r: &impl Columns) -> StoreResult<(bool, AccountStatus)> {
    Ok((r.flag(0)?, AccountStatus { disabled_at: r.opt_at(1)?, locked_until: r.opt_at(2)? }))
}

/// An event kind from [`crate::sql::EVENT_KIND`].
pub fn event_kind(r: &impl Columns) -> StoreResult<EventKindRecord> {
    let spec = r.text(2)?;
    let spec = serde_json::from_str(&spec).map_err(|e| StoreError::Corrupt(format!("event kind spec: {e}")))?;
    Ok(EventKindRecord { client_id: r.text(0)?, spec, retention_secs: r.opt_int(3)?, created_at: r.at(4)? })
}

/// An interval from two nullable columns (`None` for exact events).
fn opt_interval(r: &impl Columns, start: usize, end: usize) -> StoreResult<Option<Interval>> {
    Ok(match (r.opt_at(start)?, r.opt_at(end)?) {
        (Some(start), Some(end)) => Some(Interval { start, end }),
        _ => None,
    })
}

/// A series' live event from [`crate::sql::SERIES_EVENTS`].
pub fn series_event(r: &impl Columns) -> StoreResult<(String, Interval)> {
    let id = r.text(0)?;
    let interval =
        opt_interval(r, 1, 2)?.ok_or_else(|| StoreError::Corrupt(format!("interval event {id} has none")))?;
    Ok((id, interval))
}

/// An event's observers as stored: `[[device, first_seen_ms], ...]`.
pub fn observers_text(o: &Observers) -> String {
    let list: Vec<(&str, i64)> = o.sightings().iter().map(|(d, at)| (d.as_str(), at.as_millis())).collect();
    // A list of pairs always serialises (tuples are JSON arrays).
    serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
}

/// An event's observers from their stored text (see [`observers_text`]).
pub fn parse_observers(text: &str) -> StoreResult<Observers> {
    let list: Vec<(String, i64)> =
        serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("an event's observers: {e}")))?;
    Ok(Observers::from_sightings(list.into_iter().map(|(d, at)| (d, Timestamp::from_millis(at)))))
}

/// An event's observers from [`crate::sql::EVENT_OBSERVERS`].
pub fn observers(r: &impl Columns) -> StoreResult<Observers> {
    parse_observers(&r.text(0)?)
}

/// An event from [`crate::sql::EVENTS_AFTER`], with its observers and without parts.
pub fn stored_event(r: &impl Columns) -> StoreResult<StoredEvent> {
    let observers = parse_observers(&r.text(8)?)?
        .sightings()
        .iter()
        .map(|(d, at)| EventObserver { device_id: d.clone(), first_seen_at: *at })
        .collect();
    Ok(StoredEvent {
        id: r.text(0)?,
        seq: r.int(1)?,
        client_id: r.text(2)?,
        kind: r.text(3)?,
        identity: r.text(4)?,
        interval: opt_interval(r, 5, 6)?,
        merged_into: r.opt_text(7)?,
        observers,
        parts: Vec::new(),
    })
}

/// A part from [`crate::sql::PARTS_BETWEEN`], with its event's ID.
pub fn event_part(r: &impl Columns) -> StoreResult<(String, EventPart)> {
    Ok((r.text(0)?, EventPart { device_id: r.text(1)?, interval: Interval { start: r.at(2)?, end: r.at(3)? } }))
}

/// An event kind's spec as stored (JSON text), as [`event_kind`] reads it back.
pub fn kind_spec_text(spec: &latchkey_domain::events::KindSpec) -> StoreResult<String> {
    serde_json::to_string(spec).map_err(|e| StoreError::Corrupt(format!("event kind spec: {e}")))
}

/// A key replacement from `old_key, new_key, signature`.
pub fn rotation(r: &impl Columns) -> StoreResult<RotationRecord> {
    Ok(RotationRecord { old_key: r.text(0)?, new_key: r.text(1)?, signature: r.opt_text(2)? })
}

fn small(r: &impl Columns, i: usize, what: &str) -> StoreResult<u32> {
    u32::try_from(r.int(i)?).map_err(|_| StoreError::Corrupt(format!("{what} out of range")))
}

/// A session key from `protocol, session_key, signed_by, signature`.
pub fn session_key(r: &impl Columns) -> StoreResult<SessionKeyRecord> {
    Ok(SessionKeyRecord {
        protocol: small(r, 0, "session key protocol")?,
        key: r.text(1)?,
        signed_by: r.text(2)?,
        signature: r.text(3)?,
    })
}

/// A trust statement from [`crate::sql_trust::TRUSTS_OF_USER`] (`holds` left false).
pub fn trust(r: &impl Columns) -> StoreResult<TrustRecord> {
    Ok(TrustRecord {
        truster: r.text(0)?,
        truster_name: r.text(1)?,
        trustee: r.text(2)?,
        trustee_name: r.text(3)?,
        truster_key: r.text(4)?,
        trustee_key: r.text(5)?,
        created_at: r.at(6)?,
        holds: false,
    })
}

/// A trusted session from its columns (members left empty).
pub fn trusted_session(r: &impl Columns) -> StoreResult<TrustedSessionRecord> {
    Ok(TrustedSessionRecord {
        id: r.text(0)?,
        user_id: r.text(1)?,
        creator: r.text(2)?,
        epoch: small(r, 3, "session epoch")?,
        protocol: small(r, 4, "session protocol")?,
        rekey_needed: r.int(5)? != 0,
        created_at: r.at(6)?,
        expires_at: r.at(7)?,
        closed_at: r.opt_at(8)?,
        members: Vec::new(),
    })
}

/// A member from `device_id, status, joined_epoch`.
pub fn member(r: &impl Columns) -> StoreResult<(String, String, Option<i64>)> {
    Ok((r.text(0)?, r.text(1)?, r.opt_int(2)?))
}

/// An invitation's state from `session_id, recipient, epoch, expires_at, used_at`.
pub fn invitation_state(r: &impl Columns) -> StoreResult<InvitationState> {
    Ok(InvitationState {
        session_id: r.text(0)?,
        recipient: r.text(1)?,
        epoch: small(r, 2, "invitation epoch")?,
        expires_at: r.at(3)?,
        used_at: r.opt_at(4)?,
    })
}

/// A signed invitation from its stored JSON.
pub fn invitation_body(r: &impl Columns) -> StoreResult<latchkey_domain::trusted_session::SignedInvitation> {
    serde_json::from_str(&r.text(0)?).map_err(|e| StoreError::Corrupt(format!("stored invitation: {e}")))
}

/// A log entry from [`crate::sql_trust::LOG_AFTER`].
pub fn log_entry(r: &impl Columns) -> StoreResult<LogEntry> {
    let message = match (r.opt_text(3)?, r.opt_int(4)?, r.opt_text(5)?) {
        (Some(sender), Some(seq), Some(body)) => Some((sender, seq, body)),
        _ => None,
    };
    Ok(LogEntry {
        pos: r.int(0)?,
        session_id: r.text(1)?,
        epoch: small(r, 2, "log epoch")?,
        message,
        event: r.opt_text(6)?.map(|e| Ok::<_, StoreError>((e, r.opt_text(7)?))).transpose()?,
    })
}

/// A signed invitation as stored: its JSON, exactly as signed and relayed.
pub fn invitation_text(inv: &latchkey_domain::trusted_session::SignedInvitation) -> StoreResult<String> {
    serde_json::to_string(inv).map_err(|e| StoreError::Corrupt(format!("invitation: {e}")))
}
