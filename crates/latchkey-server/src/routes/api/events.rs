//! Multi-machine sync (`/api/v1/events`): an app declares its event kinds, its
//! devices send captures in batches, and each device pulls the merged stream.
//!
//! Everything here is done with an app's device token: kinds belong to the
//! token's app, captures come from the token's device, and a pull shows the
//! token's app's events of the token's user. The server recomputes every
//! canonical ID (`latchkey_domain::events`); a client's ID is never trusted.

use crate::credential::{AnyApp, Caller, Credential};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ClientIp, Json, Query};
use crate::routes::no_store;
use crate::state::{now, AppState};
use crate::tokens::AccessClaims;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use latchkey_domain::events::{
    canonicalize, format_time, series_id, FieldSpec, FieldType, Interval, KindSpec, MergePolicy, Precision,
};
use latchkey_proto::api::{
    Capture, IdentityField, IngestRequest, IngestResponse, IngestResult, KindDeclaration, KindInfo, Observer, Part,
    PullResponse, SyncedEvent,
};
use latchkey_store::UserId;
use latchkey_store::{
    Actor, AppId, DeclaredKind, EventKindRecord, IngestBatch, Ingested, PreparedCapture, StoredEvent,
};
use serde::Deserialize;
use std::collections::HashMap;

/// Most captures in one batch.
pub const MAX_BATCH: usize = 1000;
/// Largest capture, in bytes of its JSON (identity and interval).
pub const MAX_CAPTURE_BYTES: usize = 4096;
/// Largest batch body, in bytes: a full batch of the largest captures, and room for the envelope.
pub const MAX_BATCH_BYTES: usize = MAX_BATCH * (MAX_CAPTURE_BYTES + 256);
/// Most events in one pull.
pub const MAX_PULL: i64 = 1000;
/// Longest a pull waits for something new, in seconds.
pub const MAX_WAIT_SECS: u64 = 60;
/// Longest retention a kind may declare, in days (100 years).
const MAX_RETENTION_DAYS: i64 = 36_500;

/// The device token behind the call: events are an app's, sent by one of its devices.
fn device_claims(who: &Caller<AnyApp>) -> ApiResult<&AccessClaims> {
    match &who.credential {
        Credential::Device { claims } => Ok(claims),
        _ => Err(ApiError::credential_refused(
            "events belong to an app: call with the app's access token from a registered device, not a session",
        )),
    }
}

fn parse_field_type(s: &str) -> Option<FieldType> {
    match s {
        "string" => Some(FieldType::String),
        "integer" => Some(FieldType::Integer),
        "timestamp" => Some(FieldType::Timestamp),
        _ => None,
    }
}

fn field_type_name(t: FieldType) -> &'static str {
    match t {
        FieldType::String => "string",
        FieldType::Integer => "integer",
        FieldType::Timestamp => "timestamp",
    }
}

fn parse_precision(s: &str) -> Option<Precision> {
    match s {
        "minute" => Some(Precision::Minute),
        "second" => Some(Precision::Second),
        "millisecond" => Some(Precision::Millisecond),
        _ => None,
    }
}

fn precision_name(p: Precision) -> &'static str {
    match p {
        Precision::Minute => "minute",
        Precision::Second => "second",
        Precision::Millisecond => "millisecond",
    }
}

/// A declaration from the wire, checked.
fn spec_of(name: &str, d: &KindDeclaration) -> ApiResult<(KindSpec, Option<i64>)> {
    let bad = |m: String| ApiError::invalid_request(m);
    let mut fields = Vec::with_capacity(d.identity.len());
    for f in &d.identity {
        let ty = parse_field_type(&f.ty)
            .ok_or_else(|| bad(format!("identity field {:?}: type must be string, integer or timestamp", f.name)))?;
        fields.push(FieldSpec { name: f.name.clone(), ty });
    }
    let precision =
        parse_precision(&d.precision).ok_or_else(|| bad("precision must be minute, second or millisecond".into()))?;
    let merge = match d.merge.as_str() {
        "exact" => MergePolicy::Exact,
        "interval" => MergePolicy::Interval,
        _ => return Err(bad("merge must be exact or interval".into())),
    };
    let spec = KindSpec::new(name, fields, precision, merge).map_err(|e| bad(e.to_string()))?;
    let retention = match d.retention_days {
        None => None,
        Some(days) if (1..=MAX_RETENTION_DAYS).contains(&days) => Some(days * 86_400),
        Some(_) => return Err(bad(format!("retention_days must be 1 to {MAX_RETENTION_DAYS}"))),
    };
    Ok((spec, retention))
}

/// How the API shows a kind.
fn kind_info(k: &EventKindRecord) -> KindInfo {
    KindInfo {
        name: k.spec.name.as_str().into(),
        declaration: KindDeclaration {
            identity: k
                .spec
                .identity
                .iter()
                .map(|f| IdentityField { name: f.name.clone(), ty: field_type_name(f.ty).into() })
                .collect(),
            precision: precision_name(k.spec.precision).into(),
            merge: k.spec.merge.as_str().into(),
            retention_days: k.retention_secs.map(|s| s / 86_400),
        },
    }
}

/// `PUT /api/v1/events/kinds/{name}`: declare one of the app's event kinds (201),
/// confirm it or change its retention (200). Its identity cannot change (409).
pub async fn declare(
    State(state): State<AppState>,
    who: Caller<AnyApp>,
    Path(name): Path<String>,
    Json(d): Json<KindDeclaration>,
) -> ApiResult<Response> {
    let claims = device_claims(&who)?;
    let (spec, retention_secs) = spec_of(&name, &d)?;
    let kind = EventKindRecord { client_id: claims.client_id.clone(), spec, retention_secs, created_at: now() };
    match state.store.declare_event_kind(kind, Actor(&who.user.id), now()).await? {
        DeclaredKind::Created(k) => Ok((StatusCode::CREATED, axum::Json(kind_info(&k))).into_response()),
        DeclaredKind::Unchanged(k) | DeclaredKind::Updated(k) => Ok(axum::Json(kind_info(&k)).into_response()),
        DeclaredKind::Conflict(k) => Err(ApiError::conflict(format!(
            "the kind {:?} is already declared with another identity, precision or merge policy, and its events' IDs \
             depend on them; declare a new kind instead",
            k.spec.name.as_str()
        ))),
    }
}

/// `GET /api/v1/events/kinds`: the app's kinds.
pub async fn kinds(State(state): State<AppState>, who: Caller<AnyApp>) -> ApiResult<axum::Json<Vec<KindInfo>>> {
    let claims = device_claims(&who)?;
    let kinds = state.store.event_kinds(AppId(&claims.client_id)).await?;
    Ok(axum::Json(kinds.iter().map(kind_info).collect()))
}

/// One capture checked against its kind; the reason for the person when refused.
fn prepare(
    kinds: &HashMap<&str, &EventKindRecord>,
    app: &str,
    user: &str,
    c: &Capture,
) -> Result<PreparedCapture, String> {
    let size = serde_json::to_vec(c).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_CAPTURE_BYTES {
        return Err(format!("the event is larger than {MAX_CAPTURE_BYTES} bytes"));
    }
    let kind = kinds.get(c.kind.as_str()).ok_or_else(|| {
        format!(
            "unknown kind {:?}: declare it first (PUT /api/v1/events/kinds/{{name}})",
            c.kind.chars().take(64).collect::<String>()
        )
    })?;
    let canonical =
        canonicalize(&kind.spec, &c.identity, c.start.as_deref(), c.end.as_deref()).map_err(|e| e.to_string())?;
    Ok(PreparedCapture {
        kind: kind.spec.name.as_str().into(),
        series: series_id(app, user, kind.spec.name.as_str(), &canonical.identity),
        identity: canonical.identity.to_string(),
        interval: canonical.interval,
        precision: kind.spec.precision,
        merge: kind.spec.merge,
    })
}

/// `POST /api/v1/events`: a device's batch of captures. Each is answered on its
/// own (created, duplicate, merged, or rejected with why); the valid ones land
/// even when others are refused, and sending the same batch again is safe.
pub async fn ingest(
    State(state): State<AppState>,
    who: Caller<AnyApp>,
    Json(req): Json<IngestRequest, MAX_BATCH_BYTES>,
) -> ApiResult<Response> {
    let claims = device_claims(&who)?;
    let device = claims.device_id.as_deref().ok_or_else(|| {
        ApiError::credential_refused("events are sent by a registered device; this token belongs to no device")
    })?;
    if req.events.len() > MAX_BATCH {
        return Err(ApiError::too_large(format!("at most {MAX_BATCH} events per batch; split it")));
    }
    let records = state.store.event_kinds(AppId(&claims.client_id)).await?;
    let kinds: HashMap<&str, &EventKindRecord> = records.iter().map(|k| (k.spec.name.as_str(), k)).collect();
    let mut results: Vec<Option<IngestResult>> = Vec::with_capacity(req.events.len());
    let mut captures = Vec::new();
    for c in &req.events {
        match prepare(&kinds, &claims.client_id, &who.user.id, c) {
            Ok(p) => {
                captures.push(p);
                results.push(None);
            }
            Err(reason) => {
                results.push(Some(IngestResult { status: "rejected".into(), id: None, reason: Some(reason) }))
            }
        }
    }
    let batch = IngestBatch {
        user_id: who.user.id.clone(),
        client_id: claims.client_id.clone(),
        device_id: device.to_string(),
        captures,
    };
    let mut stored =
        if batch.captures.is_empty() { Vec::new() } else { state.store.ingest_events(batch, now()).await? }.into_iter();
    let results = results
        .into_iter()
        .map(|r| match r {
            Some(rejected) => Ok(rejected),
            None => {
                let outcome = stored.next().ok_or_else(|| ApiError::Internal("fewer outcomes than captures".into()))?;
                let status = match &outcome {
                    Ingested::Created(_) => "created",
                    Ingested::Duplicate(_) => "duplicate",
                    Ingested::Merged(_) => "merged",
                };
                Ok(IngestResult { status: status.into(), id: Some(outcome.id().to_string()), reason: None })
            }
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(no_store(IngestResponse { results }))
}

/// `?after=&limit=&wait=` of a pull.
#[derive(Deserialize)]
pub struct PullQuery {
    #[serde(default)]
    after: i64,
    limit: Option<i64>,
    #[serde(default)]
    wait: u64,
}

/// How the API shows a stored event.
fn synced(e: StoredEvent, precision: &HashMap<String, Precision>) -> SyncedEvent {
    let p = precision.get(&e.kind).copied().unwrap_or(Precision::Millisecond);
    let time = |i: Option<Interval>, f: fn(Interval) -> latchkey_domain::Timestamp| i.map(|i| format_time(f(i), p));
    SyncedEvent {
        start: time(e.interval, |i| i.start),
        end: time(e.interval, |i| i.end),
        identity: serde_json::from_str(&e.identity).unwrap_or(serde_json::Value::Null),
        observers: e
            .observers
            .into_iter()
            .map(|o| Observer { device_id: o.device_id, first_seen_at_ms: o.first_seen_at.as_millis() })
            .collect(),
        parts: e
            .parts
            .into_iter()
            .map(|x| Part {
                device_id: x.device_id,
                start: format_time(x.interval.start, p),
                end: format_time(x.interval.end, p),
            })
            .collect(),
        id: e.id,
        seq: e.seq,
        client_id: e.client_id,
        kind: e.kind,
        merged_into: e.merged_into,
    }
}

/// `GET /api/v1/events`: the app's events of the user changed after `after`, in
/// stream order; with `wait`, held (up to 60 s) until another device adds one.
pub async fn pull(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    who: Caller<AnyApp>,
    Query(q): Query<PullQuery>,
) -> ApiResult<Response> {
    let claims = device_claims(&who)?;
    if q.after < 0 {
        return Err(ApiError::invalid_request("after must be 0 or a cursor from an earlier pull"));
    }
    let limit = q.limit.unwrap_or(MAX_PULL);
    if !(1..=MAX_PULL).contains(&limit) {
        return Err(ApiError::invalid_request(format!("limit must be 1 to {MAX_PULL}")));
    }
    let (user, app) = (who.user.id.as_str(), claims.client_id.as_str());
    let page =
        || async { state.store.pull_events(UserId(user), AppId(app), q.after, limit).await.map_err(ApiError::from) };
    let mut pulled = page().await?;
    if pulled.events.is_empty() && q.wait > 0 {
        let until = now().plus_secs(i64::try_from(q.wait.min(MAX_WAIT_SECS)).unwrap_or(0));
        let subject = latchkey_store::flows::events::stream_subject(user);
        let woke = crate::long_poll::wait_for(&state, ip, &subject, until, None, || async {
            let p = page().await?;
            Ok::<_, ApiError>((!p.events.is_empty()).then_some(p))
        })
        .await?;
        if let Some(p) = woke {
            pulled = p;
        }
    }
    let kinds = state.store.event_kinds(AppId(app)).await?;
    let precision: HashMap<String, Precision> =
        kinds.into_iter().map(|k| (k.spec.name.as_str().to_string(), k.spec.precision)).collect();
    let events = pulled.events.into_iter().map(|e| synced(e, &precision)).collect();
    Ok(no_store(PullResponse { events, cursor: pulled.cursor }))
}
