//! Prometheus metrics, off unless `--metrics-listen` is set; then served at
//! `/metrics` on that separate address (see [`crate::Server::metrics_addr`]).
//!
//! Each server has its own recorder (not the process-global one), so several
//! servers in one process (replicas in tests) keep separate counts. When
//! metrics are off, every method here does nothing.

use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use std::time::{Duration, Instant};

/// Requests, by matched route template, method and status.
pub const HTTP_REQUESTS: &str = "http_requests_total";
/// Request latency, by matched route template and method.
pub const HTTP_DURATION: &str = "http_request_duration_seconds";
/// Device logins, by outcome.
pub const DEVICE_LOGINS: &str = "latchkey_device_logins_total";
/// QR sign-ins, by outcome.
pub const QR_SIGN_INS: &str = "latchkey_qr_sign_ins_total";
/// Requests parked on the instant endpoints (device logins and QR desktops).
pub const WAITING: &str = "latchkey_waiting_devices";
/// Requests refused by a rate limit, by limit.
pub const RATE_LIMITED: &str = "latchkey_rate_limited_total";
/// Password sign-ins refused for a username that does not exist (not audited: anyone can send them).
pub const UNKNOWN_USERNAME_SIGN_INS: &str = "latchkey_sign_ins_unknown_username_total";
/// SQLite: operations waiting for the writer thread.
pub const SQLITE_QUEUE: &str = "latchkey_sqlite_writer_queue";
/// SQLite: transactions the writer committed.
pub const SQLITE_COMMITS: &str = "latchkey_sqlite_commits_total";
/// SQLite: seconds the writer spent running and committing them (rate / commits rate = mean commit latency).
pub const SQLITE_COMMIT_SECONDS: &str = "latchkey_sqlite_commit_seconds_total";
/// Entries sealed into the audit tree (the latest checkpoint's size).
pub const AUDIT_ENTRIES: &str = "latchkey_audit_entries";
/// Seconds from an audit entry's commit to its seal, for the oldest entry of each seal.
pub const AUDIT_SEAL_LAG: &str = "latchkey_audit_seal_lag_seconds";
/// PostgreSQL: pool connections, by state (`open`, `idle`), and the pool's maximum (`max`).
pub const PG_POOL: &str = "latchkey_pg_pool_connections";

/// The `route` label of a request no route matched (never the raw path: it is unbounded).
pub const UNMATCHED: &str = "unmatched";

/// Latency buckets in seconds: fast reads to argon2 sign-ins and long-polls.
const BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// How a device login or QR sign-in ended (or began).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A device asked to sign in / a desktop showed a QR code.
    Started,
    /// The person approved.
    Approved,
    /// The person denied.
    Denied,
    /// The waiting side was told the code expired.
    Expired,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
        }
    }
}

/// Which rate limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Wrong user codes (per user, network, server).
    CodeEntry,
    /// Failed password sign-ins and password changes (per username, network).
    SignIn,
    /// Device authorizations per network.
    DeviceAuthorization,
    /// QR sign-ins started (per network, app).
    Pairing,
    /// Long-polls and channels held at once (per network).
    WaitersPerNetwork,
    /// Passkey sign-ins started (per network).
    PasskeyStart,
}

impl Limit {
    fn as_str(self) -> &'static str {
        match self {
            Self::CodeEntry => "code_entry",
            Self::SignIn => "sign_in",
            Self::DeviceAuthorization => "device_authorization",
            Self::Pairing => "pairing",
            Self::WaitersPerNetwork => "waiters_per_network",
            Self::PasskeyStart => "passkey_start",
        }
    }
}

/// A server's metrics: a recorder when enabled, nothing otherwise.
#[derive(Default)]
pub struct Metrics {
    inner: Option<Enabled>,
}

struct Enabled {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Metrics {
    /// Metrics that record nothing (the default: `--metrics-listen` unset).
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    /// A fresh recorder with every metric described.
    pub fn enabled() -> Self {
        let builder = PrometheusBuilder::new();
        // Without buckets the exporter renders a summary; ask for a real histogram.
        let builder = match builder
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(AUDIT_SEAL_LAG.into()), BUCKETS))
        {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("metrics buckets refused ({e}); latency is rendered as a summary");
                PrometheusBuilder::new()
            }
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::describe_counter!(HTTP_REQUESTS, "HTTP requests, by matched route, method and status.");
            metrics::describe_histogram!(
                HTTP_DURATION,
                metrics::Unit::Seconds,
                "HTTP request latency, by matched route and method."
            );
            metrics::describe_counter!(DEVICE_LOGINS, "Device logins by outcome: started, approved, denied, expired.");
            metrics::describe_counter!(QR_SIGN_INS, "QR sign-ins by outcome: started, approved, denied, expired.");
            metrics::describe_gauge!(
                WAITING,
                "Requests waiting on the instant endpoints (device logins, QR desktops)."
            );
            metrics::describe_counter!(RATE_LIMITED, "Requests refused by a rate limit, by limit.");
            metrics::describe_counter!(
                UNKNOWN_USERNAME_SIGN_INS,
                "Password sign-ins refused for a username that does not exist."
            );
            metrics::describe_gauge!(SQLITE_QUEUE, "SQLite: operations waiting for the writer thread.");
            metrics::describe_counter!(SQLITE_COMMITS, "SQLite: transactions the writer committed.");
            metrics::describe_gauge!(
                SQLITE_COMMIT_SECONDS,
                metrics::Unit::Seconds,
                "SQLite: seconds the writer spent running and committing transactions (only grows)."
            );
            metrics::describe_gauge!(
                AUDIT_ENTRIES,
                "Entries sealed into the audit tree (the latest checkpoint's size)."
            );
            metrics::describe_histogram!(
                AUDIT_SEAL_LAG,
                metrics::Unit::Seconds,
                "Seconds from an audit entry's record to its seal (the oldest entry of each seal)."
            );
            metrics::describe_gauge!(PG_POOL, "PostgreSQL: pool connections by state (open, idle) and its maximum.");
        });
        Self { inner: Some(Enabled { recorder, handle }) }
    }

    /// Whether anything is recorded.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    fn record(&self, f: impl FnOnce()) {
        if let Some(m) = &self.inner {
            metrics::with_local_recorder(&m.recorder, f);
        }
    }

    /// Counts a finished HTTP request.
    pub fn http_request(&self, route: &str, method: &Method, status: u16, took: Duration) {
        let method = method_label(method);
        self.record(|| {
            let (route, status) = (route.to_string(), status.to_string());
            metrics::counter!(HTTP_REQUESTS, "route" => route.clone(), "method" => method, "status" => status)
                .increment(1);
            metrics::histogram!(HTTP_DURATION, "route" => route, "method" => method).record(took.as_secs_f64());
        });
    }

    /// Counts a device login reaching `outcome`.
    pub fn device_login(&self, outcome: Outcome) {
        self.record(|| metrics::counter!(DEVICE_LOGINS, "outcome" => outcome.as_str()).increment(1));
    }

    /// Counts a sign-in refused because it names no account: an unknown username,
    /// or a passkey nobody registered.
    pub fn unknown_username_sign_in(&self) {
        self.record(|| metrics::counter!(UNKNOWN_USERNAME_SIGN_INS).increment(1));
    }

    /// Counts a QR sign-in reaching `outcome`.
    pub fn qr_sign_in(&self, outcome: Outcome) {
        self.record(|| metrics::counter!(QR_SIGN_INS, "outcome" => outcome.as_str()).increment(1));
    }

    /// Records how long the oldest entry of a seal waited for it.
    pub fn audit_sealed(&self, lag: Duration) {
        self.record(|| metrics::histogram!(AUDIT_SEAL_LAG).record(lag.as_secs_f64()));
    }

    /// Counts a request refused by `limit`.
    pub fn rate_limited(&self, limit: Limit) {
        self.record(|| metrics::counter!(RATE_LIMITED, "limit" => limit.as_str()).increment(1));
    }

    /// The exposition text, with the sampled gauges (waiters, the backend's load) brought up to date.
    pub fn render(
        &self,
        waiting: usize,
        backend: latchkey_store::BackendStats,
        audit_entries: Option<i64>,
    ) -> Option<String> {
        let m = self.inner.as_ref()?;
        metrics::with_local_recorder(&m.recorder, || {
            metrics::gauge!(WAITING).set(waiting as f64);
            if let Some(n) = audit_entries {
                metrics::gauge!(AUDIT_ENTRIES).set(n as f64);
            }
            if let Some(q) = backend.writer_queue {
                metrics::gauge!(SQLITE_QUEUE).set(q as f64);
            }
            if let Some((commits, secs)) = backend.commits {
                metrics::counter!(SQLITE_COMMITS).absolute(commits);
                metrics::gauge!(SQLITE_COMMIT_SECONDS).set(secs);
            }
            if let Some((open, idle, max)) = backend.pool {
                metrics::gauge!(PG_POOL, "state" => "open").set(open as f64);
                metrics::gauge!(PG_POOL, "state" => "idle").set(idle as f64);
                metrics::gauge!(PG_POOL, "state" => "max").set(max as f64);
            }
        });
        Some(m.handle.render())
    }

    /// Drains histogram samples into their buckets (so memory stays flat between scrapes).
    pub fn upkeep(&self) {
        if let Some(m) = &self.inner {
            m.handle.run_upkeep();
        }
    }
}

/// The method as a label: the standard ones by name, anything else as `other` (bounded).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Route layer: copies the matched route template onto the response, where
/// [`track`] (outside routing, so it also sees 404s and final statuses) reads it.
pub async fn tag_route(req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let mut resp = next.run(req).await;
    if let Some(m) = matched {
        resp.extensions_mut().insert(m);
    }
    resp
}

/// Outer layer: counts every request and its latency, by route template.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !state.metrics.is_enabled() {
        return next.run(req).await;
    }
    let method = req.method().clone();
    let start = Instant::now();
    let resp = next.run(req).await;
    let route = resp.extensions().get::<MatchedPath>().map(|m| m.as_str()).unwrap_or(UNMATCHED);
    state.metrics.http_request(route, &method, resp.status().as_u16(), start.elapsed());
    resp
}

/// `GET /metrics` on the metrics listener.
pub async fn scrape(State(state): State<AppState>) -> Response {
    let waiting = state.store.notifier().waiting_subjects();
    // A database that does not answer leaves the gauge out; /readyz reports that.
    let audit_entries = state.store.audit_tree().await.ok().map(|t| t.size as i64);
    match state.metrics.render(waiting, state.store.stats(), audit_entries) {
        Some(text) => {
            ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"))], text)
                .into_response()
        }
        None => crate::error::ApiError::not_found("metrics are off").into_response(),
    }
}
