//! The Audit page: the signed-in user's own events (admins: everyone's),
//! newest first, 50 a page, each told as a sentence with names instead of IDs
//! (the IDs one click away), filterable by kind, device and date range, under
//! the latest signed checkpoint of the log, each entry checked against it with
//! its inclusion proof (so a page costs O(entries × log n), never a walk of the
//! whole log); and the same filtered view exported as JSON Lines (`GET /audit/export`).

use super::pages::{render, rfc3339, signin_redirect, PageResult, When};
use crate::audit_log;
use crate::credential::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::state::{now, AppState};
use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use futures::StreamExt;
use latchkey_domain::audit::{self, AuditCheckpoint, AuditEntry, AuditKind};
use latchkey_domain::audit_sentence::{sentence, DeviceName, Names, Part};
use latchkey_domain::Timestamp;
use latchkey_store::{AuditFilter, NameKind, UserId};
use serde::Deserialize;
use serde_json::Value;

/// Entries per page.
pub const PAGE_SIZE: i64 = 50;
/// Entries read at a time while exporting.
const EXPORT_BATCH: i64 = 1000;
/// Keys of an entry's detail that may hold the ID of a user, device or app.
const DETAIL_IDS: [&str; 6] = ["device", "truster", "creator", "client_id", "owner_id", "user_id"];

/// One piece of a sentence as the page shows it: names emphasised, devices linked to their own events.
struct Piece {
    text: String,
    named: bool,
    href: Option<String>,
}

/// An entry as the page shows it.
struct Row {
    seq: i64,
    at: When,
    kind: String,
    sentence: Vec<Piece>,
    /// Each named thing and its raw ID, to copy.
    ids: Vec<(String, String)>,
    /// The raw detail, for those who want every fact.
    detail: String,
    /// Whether the signed log holds it as shown.
    sealed: Sealed,
}

/// An entry against the signed log.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sealed {
    /// Its inclusion proof leads to the checkpoint's root: its leaf.
    Included(u64),
    /// Recorded after the checkpoint; sealed within a second or so.
    Pending,
    /// Sealed, but the entry as stored does not match its leaf, or the proof fails.
    Mismatch,
}

/// The log as the page shows it.
enum Log {
    /// The latest checkpoint, verified with the server's keys: size, when, a prefix of its root.
    Signed(u64, When, String),
    /// Nothing sealed yet.
    Empty,
    /// The checkpoint does not verify.
    Broken(String),
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    signed_in_as: Option<String>,
    csrf: String,
    is_admin: bool,
    log: Log,
    /// Every kind, and whether it is the one filtered on.
    kinds: Vec<(&'static str, bool)>,
    kind: String,
    /// Devices to filter on: (ID, name, selected).
    devices: Vec<(String, String, bool)>,
    device: String,
    from: String,
    to: String,
    filtered: bool,
    rows: Vec<Row>,
    newest_href: Option<String>,
    older_href: Option<String>,
    export_href: String,
}

/// Query of the page and of the export.
#[derive(Deserialize, Default)]
pub struct AuditQuery {
    kind: Option<String>,
    device: Option<String>,
    from: Option<String>,
    to: Option<String>,
    before: Option<String>,
}

/// The filters a query asks for, checked.
#[derive(Default, Clone)]
struct Filters {
    kind: Option<AuditKind>,
    device: Option<String>,
    /// `YYYY-MM-DD` and the first millisecond of that day (UTC).
    from: Option<(String, Timestamp)>,
    /// `YYYY-MM-DD` and the first millisecond of the day after (UTC): the day is included.
    to: Option<(String, Timestamp)>,
    before: Option<i64>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// A `YYYY-MM-DD` date as the first millisecond of that day, plus `days`, in UTC.
fn day_start(s: &str, days: i64, what: &str) -> ApiResult<Timestamp> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(s, &fmt)
        .map_err(|_| ApiError::invalid_request(format!("{what} must be a date such as 2026-11-30")))?;
    let secs = d.midnight().assume_utc().unix_timestamp() + days * 86_400;
    Ok(Timestamp::from_millis(secs * 1000))
}

impl Filters {
    fn parse(q: &AuditQuery) -> ApiResult<Self> {
        let kind = match given(&q.kind) {
            None => None,
            Some(k) => Some(
                AuditKind::parse(k).ok_or_else(|| ApiError::invalid_request("there is no event kind of that name"))?,
            ),
        };
        let device = match given(&q.device) {
            None => None,
            Some(d) if d.len() <= 128 && d.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\') => {
                Some(d.to_string())
            }
            Some(_) => return Err(ApiError::invalid_request("device must be a device ID")),
        };
        let from = match given(&q.from) {
            None => None,
            Some(f) => Some((f.to_string(), day_start(f, 0, "from")?)),
        };
        let to = match given(&q.to) {
            None => None,
            Some(t) => Some((t.to_string(), day_start(t, 1, "to")?)),
        };
        if let (Some((_, f)), Some((_, t))) = (&from, &to) {
            if f >= t {
                return Err(ApiError::invalid_request("the date range ends before it starts"));
            }
        }
        let before = match given(&q.before) {
            None => None,
            Some(b) => Some(
                b.parse::<i64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| ApiError::invalid_request("before must be an entry number"))?,
            ),
        };
        Ok(Filters { kind, device, from, to, before })
    }

    /// The store's filter; `involving` limits it to one person's events (see [`involving`]).
    fn store_filter(&self, involving: Option<String>, before: Option<i64>, limit: i64) -> AuditFilter {
        AuditFilter {
            involving,
            kind: self.kind.map(|k| k.as_str().to_string()),
            before_seq: before,
            device: self.device.clone(),
            since: self.from.as_ref().map(|(_, t)| *t),
            until: self.to.as_ref().map(|(_, t)| *t),
            limit,
        }
    }

    /// The filters as a query string, with `before` when paging.
    fn query(&self, before: Option<i64>) -> String {
        let mut q: Vec<(&str, String)> = Vec::new();
        if let Some(k) = self.kind {
            q.push(("kind", k.as_str().to_string()));
        }
        if let Some(d) = &self.device {
            q.push(("device", d.clone()));
        }
        if let Some((f, _)) = &self.from {
            q.push(("from", f.clone()));
        }
        if let Some((t, _)) = &self.to {
            q.push(("to", t.clone()));
        }
        if let Some(b) = before {
            q.push(("before", b.to_string()));
        }
        serde_urlencoded::to_string(q).unwrap_or_default()
    }

    fn href(&self, path: &str, before: Option<i64>) -> String {
        let q = self.query(before);
        if q.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{q}")
        }
    }

    fn any(&self) -> bool {
        self.kind.is_some() || self.device.is_some() || self.from.is_some() || self.to.is_some()
    }
}

/// Whose events `w` may read: only their own unless they are an admin.
fn involving(w: &Caller) -> Option<String> {
    (!w.user.is_admin).then(|| w.user.id.clone())
}

/// The latest checkpoint, and each entry checked against it with its inclusion proof.
async fn check_entries(state: &AppState, entries: &[AuditEntry]) -> ApiResult<(Log, Vec<Sealed>)> {
    let t = now();
    let checkpoint: AuditCheckpoint = match audit_log::latest_checkpoint(state.store.as_ref()).await? {
        Some(Ok(c)) => c,
        None => return Ok((Log::Empty, vec![Sealed::Pending; entries.len()])),
        Some(Err(e)) => {
            let why = format!("the latest checkpoint does not verify with this server's audit keys ({e})");
            return Ok((Log::Broken(why), vec![Sealed::Mismatch; entries.len()]));
        }
    };
    let seqs = entries.iter().map(|e| e.seq).collect();
    let proofs = state.store.audit_inclusions(seqs, Some(checkpoint.size)).await?.unwrap_or_default();
    let sealed = entries
        .iter()
        .map(|e| match proofs.iter().find(|p| p.seq == e.seq) {
            Some(p) if p.leaf_hash == audit::leaf_hash(e) && audit_log::proves(p, &checkpoint) => {
                Sealed::Included(p.leaf)
            }
            Some(_) => Sealed::Mismatch,
            None if e.leaf.is_some_and(|l| (l as u64) < checkpoint.size) => Sealed::Mismatch,
            None => Sealed::Pending,
        })
        .collect();
    let root: String = checkpoint.root[..8].iter().map(|b| format!("{b:02x}")).collect();
    Ok((Log::Signed(checkpoint.size, When::at(checkpoint.time.as_millis(), t), root), sealed))
}

/// The names of every user, device and app the entries mention, looked up at once.
async fn names_for(state: &AppState, entries: &[AuditEntry], me: &str) -> ApiResult<Names> {
    let mut ids: Vec<String> = Vec::new();
    let mut add = |id: &str| {
        if !id.is_empty() && id != "system" && !ids.iter().any(|i| i == id) {
            ids.push(id.to_string());
        }
    };
    for e in entries {
        e.actor.as_deref().map(&mut add);
        e.subject.as_deref().map(&mut add);
        if let Ok(Value::Object(d)) = serde_json::from_str::<Value>(&e.detail) {
            for key in DETAIL_IDS {
                if let Some(Value::String(id)) = d.get(key) {
                    add(id);
                }
            }
            if let Some(Value::Array(members)) = d.get("members") {
                members.iter().filter_map(Value::as_str).for_each(&mut add);
            }
        }
    }
    let mut names = Names { me: Some(me.to_string()), ..Names::default() };
    for n in state.store.audit_names(ids).await? {
        match n.kind {
            NameKind::User => {
                names.users.insert(n.id, n.name);
            }
            NameKind::Device => {
                names.devices.insert(n.id, DeviceName { name: n.name, location: n.location });
            }
            NameKind::App => {
                names.apps.insert(n.id, n.name);
            }
        }
    }
    Ok(names)
}

fn row(e: AuditEntry, sealed: Sealed, names: &Names, t: Timestamp) -> Row {
    let s = sentence(&e.kind, e.actor.as_deref(), e.subject.as_deref(), &e.detail, names);
    let ids = s.ids();
    let pieces = s
        .parts
        .into_iter()
        .map(|Part { text, id }| {
            let href = id
                .as_deref()
                .filter(|id| names.devices.contains_key(*id))
                .map(|id| format!("/audit?{}", serde_urlencoded::to_string([("device", id)]).unwrap_or_default()));
            Piece { named: id.is_some(), text, href }
        })
        .collect();
    Row {
        seq: e.seq,
        at: When::at(e.at.as_millis(), t),
        kind: e.kind,
        sentence: pieces,
        ids,
        detail: if e.detail == "{}" { String::new() } else { e.detail },
        sealed,
    }
}

/// The devices the filter offers: the caller's own, and the one filtered on.
async fn device_choices(
    state: &AppState,
    w: &Caller,
    f: &Filters,
    names: &Names,
) -> ApiResult<Vec<(String, String, bool)>> {
    let mut out: Vec<(String, String, bool)> = state
        .store
        .devices(UserId(&w.user.id))
        .await?
        .into_iter()
        .map(|d| {
            let selected = f.device.as_deref() == Some(d.id.as_str());
            (d.id, d.display_name, selected)
        })
        .collect();
    if let Some(id) = &f.device {
        if !out.iter().any(|(i, _, _)| i == id) {
            let name = names.devices.get(id).map(|d| d.name.clone()).unwrap_or_else(|| id.clone());
            out.push((id.clone(), name, true));
        }
    }
    Ok(out)
}

/// `GET /audit?kind=…&device=…&from=YYYY-MM-DD&to=YYYY-MM-DD&before=<seq>`.
pub async fn page(State(state): State<AppState>, who: Option<Caller>, Query(q): Query<AuditQuery>) -> PageResult {
    let Some(w) = who else {
        return Ok(signin_redirect("/audit"));
    };
    let f = Filters::parse(&q)?;
    let mut entries =
        state.store.audit_page(f.store_filter(involving(&w), f.before, PAGE_SIZE + 1)).await.map_err(ApiError::from)?;
    let more = entries.len() as i64 > PAGE_SIZE;
    entries.truncate(PAGE_SIZE as usize);
    let older_href = if more { entries.last().map(|e| f.href("/audit", Some(e.seq))) } else { None };
    let mut names = names_for(&state, &entries, &w.user.id).await?;
    if let Some(d) = f.device.as_ref().filter(|d| w.user.is_admin && !names.devices.contains_key(*d)) {
        // The device filtered on, even when no entry on this page names it (an admin may
        // filter on anyone's; others see names only of what their own entries mention).
        for n in state.store.audit_names(vec![d.clone()]).await? {
            if n.kind == NameKind::Device {
                names.devices.insert(n.id, DeviceName { name: n.name, location: n.location });
            }
        }
    }
    let devices = device_choices(&state, &w, &f, &names).await?;
    let (log, sealed) = check_entries(&state, &entries).await?;
    let kind = f.kind.map(AuditKind::as_str);
    let t = now();
    Ok(render(
        StatusCode::OK,
        &AuditPage {
            signed_in_as: Some(w.user.username.clone()),
            csrf: w.csrf(),
            is_admin: w.user.is_admin,
            log,
            kinds: AuditKind::ALL.iter().map(|k| (k.as_str(), Some(k.as_str()) == kind)).collect(),
            kind: kind.unwrap_or_default().to_string(),
            devices,
            device: f.device.clone().unwrap_or_default(),
            from: f.from.as_ref().map(|(s, _)| s.clone()).unwrap_or_default(),
            to: f.to.as_ref().map(|(s, _)| s.clone()).unwrap_or_default(),
            filtered: f.any(),
            rows: entries.into_iter().zip(sealed).map(|(e, s)| row(e, s, &names, t)).collect(),
            newest_href: f.before.map(|_| f.href("/audit", None)),
            older_href,
            export_href: f.href("/audit/export", None),
        },
    ))
}

/// One exported entry: the stored facts, the names and the sentence.
fn export_line(e: &AuditEntry, names: &Names) -> String {
    let s = sentence(&e.kind, e.actor.as_deref(), e.subject.as_deref(), &e.detail, names);
    let name_of = |id: Option<&str>| -> Value {
        let Some(id) = id else { return Value::Null };
        names
            .users
            .get(id)
            .or_else(|| names.apps.get(id))
            .cloned()
            .or_else(|| names.devices.get(id).map(|d| d.name.clone()))
            .map(Value::String)
            .unwrap_or(Value::Null)
    };
    let line = serde_json::json!({
        "seq": e.seq,
        "at": rfc3339(e.at.as_millis()),
        "at_ms": e.at.as_millis(),
        "kind": e.kind,
        "actor": e.actor,
        "actor_name": name_of(e.actor.as_deref()),
        "subject": e.subject,
        "subject_name": name_of(e.subject.as_deref()),
        "sentence": s.plain(),
        "detail": serde_json::from_str::<Value>(&e.detail).unwrap_or_else(|_| Value::String(e.detail.clone())),
    });
    line.to_string()
}

/// Where an export has got to: the next batch is the entries before `before`.
struct Export {
    state: AppState,
    filters: Filters,
    involving: Option<String>,
    me: String,
    before: Option<i64>,
    done: bool,
}

impl Export {
    /// The next batch as JSON Lines, or `None` at the end.
    async fn next_chunk(&mut self) -> Option<ApiResult<String>> {
        if self.done {
            return None;
        }
        let filter = self.filters.store_filter(self.involving.clone(), self.before, EXPORT_BATCH);
        let batch = match self.state.store.audit_page(filter).await {
            Ok(b) => b,
            Err(e) => return Some(Err(e.into())),
        };
        let last = batch.last()?;
        self.before = Some(last.seq);
        self.done = (batch.len() as i64) < EXPORT_BATCH;
        let names = match names_for(&self.state, &batch, &self.me).await {
            Ok(n) => n,
            Err(e) => return Some(Err(e)),
        };
        let mut chunk = String::new();
        for e in &batch {
            chunk.push_str(&export_line(e, &names));
            chunk.push('\n');
        }
        Some(Ok(chunk))
    }
}

/// `GET /audit/export?kind=…&device=…&from=…&to=…`: every entry of the filtered
/// view (not only one page), newest first, as JSON Lines to download, streamed a
/// batch at a time so a long log never sits in memory whole.
pub async fn export(State(state): State<AppState>, who: Option<Caller>, Query(q): Query<AuditQuery>) -> PageResult {
    let Some(w) = who else {
        return Ok(signin_redirect("/audit"));
    };
    let filters = Filters::parse(&q)?;
    let mut export =
        Export { state, involving: involving(&w), me: w.user.id.clone(), before: filters.before, filters, done: false };
    // The first batch before answering, so a failing store is an error page, not a cut-off file.
    let first = export.next_chunk().await.transpose()?;
    let rest = futures::stream::unfold(export, |mut export| async move {
        let chunk = export.next_chunk().await?;
        let chunk = chunk.map_err(|e| {
            e.log();
            export.done = true;
            std::io::Error::other("the audit export stopped early")
        });
        Some((chunk, export))
    });
    let body = futures::stream::iter(first.map(Ok)).chain(rest);
    let mut resp = (StatusCode::OK, axum::body::Body::from_stream(body)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"latchkey-audit.jsonl\""));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_include_the_whole_day() {
        let q = AuditQuery { from: Some("2026-11-30".into()), to: Some("2026-11-30".into()), ..AuditQuery::default() };
        let f = Filters::parse(&q).map_err(|_| "parse").unwrap_or_default();
        let from = f.from.as_ref().map(|(_, t)| t.as_millis());
        let to = f.to.as_ref().map(|(_, t)| t.as_millis());
        assert_eq!(from, Some(1_795_996_800_000));
        assert_eq!(to, Some(1_795_996_800_000 + 86_400_000));
        assert_eq!(f.query(Some(7)), "from=2026-11-30&to=2026-11-30&before=7");
    }

    #[test]
    fn bad_filters_are_refused() {
        for q in [
            AuditQuery { kind: Some("nope".into()), ..AuditQuery::default() },
            AuditQuery { from: Some("30/11/2026".into()), ..AuditQuery::default() },
            AuditQuery { from: Some("2026-12-02".into()), to: Some("2026-12-01".into()), ..AuditQuery::default() },
            AuditQuery { device: Some("a\"b".into()), ..AuditQuery::default() },
            AuditQuery { before: Some("-1".into()), ..AuditQuery::default() },
        ] {
            assert!(Filters::parse(&q).is_err());
        }
    }
}
