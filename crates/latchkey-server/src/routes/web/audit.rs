//! The Audit page: the signed-in user's own events (admins: everyone's),
//! newest first, 50 a page, filterable by kind, under the chain's verification status.

use super::pages::{render, signin_redirect, utc, PageResult};
use crate::credential::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use latchkey_domain::audit::{AuditEntry, AuditKind, ChainVerifier};
use latchkey_store::AuditFilter;
use serde::Deserialize;

/// Entries per page.
pub const PAGE_SIZE: i64 = 50;
/// Entries read at a time while verifying the chain.
const VERIFY_BATCH: i64 = 1000;

/// An entry as the page shows it.
struct Row {
    seq: i64,
    at: String,
    kind: String,
    actor: String,
    subject: String,
    detail: String,
}

impl Row {
    fn new(e: AuditEntry, me: &str) -> Self {
        let who = |v: Option<String>| match v {
            Some(v) if v == me => "you".to_string(),
            Some(v) => v,
            None => String::new(),
        };
        Row {
            seq: e.seq,
            at: utc(e.at.as_millis()),
            kind: e.kind,
            actor: who(e.actor),
            subject: who(e.subject),
            detail: if e.detail == "{}" { String::new() } else { e.detail },
        }
    }
}

/// What verifying the whole chain found.
enum Chain {
    /// Every entry links and the head matches: how many entries, and a prefix of the head hash.
    Intact(i64, String),
    /// The first break found.
    Broken(String),
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    signed_in_as: Option<String>,
    csrf: String,
    is_admin: bool,
    chain: Chain,
    /// Every kind, and whether it is the one filtered on.
    kinds: Vec<(&'static str, bool)>,
    kind: String,
    rows: Vec<Row>,
    newest_href: Option<String>,
    older_href: Option<String>,
}

/// Query of the page.
#[derive(Deserialize)]
pub struct AuditQuery {
    kind: Option<String>,
    before: Option<String>,
}

/// Walks the chain up to its recorded head (read first, so entries appended
/// meanwhile do not look like a mismatch).
async fn verify_chain(state: &AppState) -> ApiResult<Chain> {
    let head = state.store.audit_head().await?;
    let mut verifier = ChainVerifier::default();
    let mut after = 0;
    'walk: while after < head.seq {
        let batch = state.store.audit_entries(after, VERIFY_BATCH).await?;
        if batch.is_empty() {
            break;
        }
        for e in &batch {
            if e.seq > head.seq {
                break 'walk;
            }
            if let Err(b) = verifier.push(e) {
                return Ok(Chain::Broken(b.to_string()));
            }
            after = e.seq;
        }
    }
    Ok(match verifier.finish(head) {
        Ok(h) => Chain::Intact(h.seq, h.hash[..8].iter().map(|b| format!("{b:02x}")).collect()),
        Err(b) => Chain::Broken(b.to_string()),
    })
}

fn href(kind: Option<&str>, before: Option<i64>) -> String {
    let mut q: Vec<(&str, String)> = Vec::new();
    if let Some(k) = kind {
        q.push(("kind", k.to_string()));
    }
    if let Some(b) = before {
        q.push(("before", b.to_string()));
    }
    if q.is_empty() {
        "/audit".into()
    } else {
        format!("/audit?{}", serde_urlencoded::to_string(q).unwrap_or_default())
    }
}

/// `GET /audit?kind=…&before=<seq>`.
pub async fn page(State(state): State<AppState>, who: Option<Caller>, Query(q): Query<AuditQuery>) -> PageResult {
    let Some(w) = who else {
        return Ok(signin_redirect("/audit"));
    };
    let kind = match q.kind.as_deref().filter(|k| !k.is_empty()) {
        None => None,
        Some(k) => {
            Some(AuditKind::parse(k).ok_or_else(|| ApiError::invalid_request("there is no event kind of that name"))?)
        }
    };
    let before = match q.before.as_deref().filter(|b| !b.is_empty()) {
        None => None,
        Some(b) => Some(
            b.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ApiError::invalid_request("before must be an entry number"))?,
        ),
    };
    let filter = AuditFilter {
        involving: (!w.user.is_admin).then(|| w.user.id.clone()),
        kind: kind.map(|k| k.as_str().to_string()),
        before_seq: before,
        limit: PAGE_SIZE + 1,
    };
    let mut entries = state.store.audit_page(filter).await.map_err(ApiError::from)?;
    let more = entries.len() as i64 > PAGE_SIZE;
    entries.truncate(PAGE_SIZE as usize);
    let kind = kind.map(AuditKind::as_str);
    let older_href = if more { entries.last().map(|e| href(kind, Some(e.seq))) } else { None };
    let chain = verify_chain(&state).await?;
    Ok(render(
        StatusCode::OK,
        &AuditPage {
            signed_in_as: Some(w.user.username.clone()),
            csrf: w.csrf(),
            is_admin: w.user.is_admin,
            chain,
            kinds: AuditKind::ALL.iter().map(|k| (k.as_str(), Some(k.as_str()) == kind)).collect(),
            kind: kind.unwrap_or_default().to_string(),
            rows: entries.into_iter().map(|e| Row::new(e, &w.user.id)).collect(),
            newest_href: before.map(|_| href(kind, None)),
            older_href,
        },
    ))
}
