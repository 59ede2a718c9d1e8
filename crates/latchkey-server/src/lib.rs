//! Latchkey's HTTP server.
//!
//! [`Server::new`] prepares state over any [`latchkey_store::Store`];
//! [`Server::run`] serves a listener until a shutdown future resolves, then
//! lets in-flight requests finish (long-polls are released at once);
//! [`Server::run_tls`] does the same over HTTPS (see [`tls`]).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod accept;
pub mod audit_log;
pub mod client_auth;
pub mod config;
pub mod credential;
pub mod device_flow;
pub mod dpop;
pub mod error;
pub mod extract;
pub mod janitor;
pub mod jws;
pub mod keys;
pub mod long_poll;
pub mod metrics;
pub mod passkeys;
pub mod passwords;
pub mod qr;
pub mod qr_flow;
pub mod rate_limit;
pub mod readiness;
pub mod routes;
pub mod session;
pub mod sign_in;
pub mod state;
pub mod tls;
pub mod tokens;
pub mod web_sign_in;

use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::keys::KeyRing;
use crate::state::{now, AppState};
use axum::http::{header, HeaderName, HeaderValue};
use axum::serve::Listener;
use axum::Router;
use latchkey_store::AppId;
use latchkey_store::{AppRecord, ClientKind, GrantType, Store, StoreError};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::set_header::SetResponseHeaderLayer;

/// A configured server, ready to run.
pub struct Server {
    state: AppState,
    shutdown_tx: watch::Sender<bool>,
    /// The `/metrics` listener, bound when `--metrics-listen` is set.
    metrics_listener: Option<TcpListener>,
}

/// The built-in public app our own CLI signs in as.
pub fn builtin_cli_app() -> AppRecord {
    AppRecord {
        client_id: latchkey_proto::CLI_CLIENT_ID.into(),
        display_name: "Latchkey CLI".into(),
        kind: ClientKind::Public,
        secret_hash: None,
        grant_types: vec![GrantType::DeviceCode, GrantType::RefreshToken],
        redirect_uris: vec![],
        app_url: None,
        qr_sign_in: false,
        // Its tokens open the account API; a copied token must be useless without the device's key.
        require_dpop: true,
        created_at: now(),
        post_logout_redirect_uris: Vec::new(),
        id_token_alg: Default::default(),
    }
}

/// Registers the built-in CLI app if it is missing (idempotent, safe across replicas).
pub async fn ensure_builtin_app(store: &dyn Store) -> Result<(), ApiError> {
    if store.app(AppId(latchkey_proto::CLI_CLIENT_ID)).await?.is_none() {
        match store.create_app(builtin_cli_app(), Some("system".into()), now()).await {
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

impl Server {
    /// Loads keys (making the first), registers the built-in app, binds the
    /// metrics listener if `--metrics-listen` is set, and builds state. The
    /// store must already be unlocked with the server secret key (`Store::secure_keys`).
    pub async fn new(store: Arc<dyn Store>, config: ServerConfig) -> Result<Self, ApiError> {
        let metrics_listener = match &config.metrics_listen {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
                ApiError::Internal(format!(
                    "cannot listen on {addr} for metrics (pick another with --metrics-listen): {e}"
                ))
            })?),
            None => None,
        };
        let metrics =
            if metrics_listener.is_some() { metrics::Metrics::enabled() } else { metrics::Metrics::disabled() };
        // Keys and user codes are kept under the server secret key: the store must
        // have been unlocked with it (`Store::secure_keys`) before anything starts.
        store.secret_key()?;
        ensure_builtin_app(store.as_ref()).await?;
        audit_log::ensure_key(store.as_ref(), &config.public_url).await?;
        let max_lifetime = config.access_token_lifetime_secs();
        let keys = KeyRing::load(store.as_ref(), max_lifetime).await?;
        let (shutdown_tx, shutting_down) = watch::channel(false);
        let config_public_url = config.public_url.clone();
        let state = AppState {
            limits: Arc::new(state::Limits::new(&config)),
            password_checks: Arc::new(tokio::sync::Semaphore::new(config.concurrent_password_checks.max(1))),
            waiters: Arc::new(long_poll::NetworkWaiters::new(config.waiters_per_network)),
            store,
            config: Arc::new(config),
            keys: Arc::new(keys),
            dpop_replay: Arc::default(),
            shutting_down,
            metrics: Arc::new(metrics),
            webauthn: passkeys::relying_party(&config_public_url).map(Arc::new),
        };
        Ok(Self { state, shutdown_tx, metrics_listener })
    }

    /// Where `/metrics` is served (`None` when `--metrics-listen` is unset).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The shared state (for tests and admin tooling).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The router with every route and the security headers.
    pub fn router(&self) -> Router {
        router(self.state.clone())
    }

    /// Serves `listener` (and the metrics listener, if any) until `shutdown`
    /// resolves, then drains in-flight requests.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.serve(listener, shutdown).await
    }

    /// Serves HTTPS on `listener` with `tls` until `shutdown` resolves, then drains
    /// in-flight requests; `tls.reloader()` swaps the certificate meanwhile. The
    /// metrics listener, if any, stays plain HTTP (keep it on a private address).
    pub async fn run_tls(
        self,
        listener: TcpListener,
        tls: &tls::Tls,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let listener = tls::TlsListener::new(listener, tls)?;
        self.serve(listener, shutdown).await
    }

    async fn serve<L>(self, listener: L, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()>
    where
        L: Listener<Addr = SocketAddr>,
    {
        let app = self.router();
        let Self { state, shutdown_tx: tx, metrics_listener } = self;
        let limits = accept::ConnectionLimits {
            max_connections: usize::try_from(state.config.max_connections).unwrap_or(usize::MAX),
            header_read_timeout: state.config.header_read_timeout,
        };
        let janitor = tokio::spawn(janitor::run(state.clone()));
        let sealer = tokio::spawn(audit_log::sealer(state.clone(), state.config.audit_seal_every));
        let metrics = metrics_listener.map(|l| {
            let state = state.clone();
            let mut stopping = state.shutting_down.clone();
            tokio::spawn(async move {
                let upkeep = metrics_upkeep(state.clone());
                let app = Router::new()
                    .route("/metrics", axum::routing::get(metrics::scrape))
                    .with_state(state)
                    .into_make_service();
                let serve = axum::serve(l, app).with_graceful_shutdown(async move {
                    let _ = stopping.wait_for(|s| *s).await;
                });
                tokio::select! {
                    r = serve => r,
                    () = upkeep => Ok(()),
                }
            })
        });
        let result = accept::serve(listener, app, limits, async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            // Releases long-polls so they answer `authorization_pending` now,
            // and stops the metrics listener.
            let _ = tx.send(true);
        })
        .await;
        janitor.abort();
        sealer.abort();
        if let Some(m) = metrics {
            match m.await {
                Ok(Err(e)) => tracing::warn!(error = %e, "metrics listener failed"),
                Err(e) => tracing::warn!(error = %e, "metrics listener task failed"),
                Ok(Ok(())) => {}
            }
        }
        result
    }
}

/// Keeps histogram memory flat between scrapes; never returns.
async fn metrics_upkeep(state: AppState) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        every.tick().await;
        state.metrics.upkeep();
    }
}

fn router(state: AppState) -> Router {
    let all = routes::router()
        .route("/readyz", axum::routing::get(readiness::readyz))
        // Inside routing: hands the matched route template to `metrics::track`.
        .route_layer(axum::middleware::from_fn(metrics::tag_route))
        .fallback(|| async { ApiError::not_found("no such page or endpoint") })
        .layer(axum::middleware::map_response(json_rejections))
        // A client that trickles its body ties up a connection; bodies are tiny, so 10 s is plenty.
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(std::time::Duration::from_secs(10)))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track));
    let https = state.config.secure_cookies();
    with_request_id(with_security_headers(all, https)).with_state(state)
}

/// `x-request-id` on every request and response: the caller's if it is a sane
/// short token, otherwise a new UUID; the request's tracing span carries it, so
/// every log line of the request names it.
fn with_request_id(router: Router<AppState>) -> Router<AppState> {
    use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
    let span = |req: &axum::http::Request<axum::body::Body>| {
        let id = req.extensions().get::<RequestId>().and_then(|id| id.header_value().to_str().ok()).unwrap_or("-");
        // The path only: a query string may carry a user code.
        tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
    };
    // Layers run outside-in from the last one added: clean, set, trace, then copy onto the response.
    router
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        // Failures are logged once, with their cause, where they happen (`ApiError::log`);
        // the layer's own failure line would repeat every 5xx at error level.
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(span).on_failure(()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        .layer(axum::middleware::map_request(drop_odd_request_id))
}

/// The request ID header.
static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Removes an incoming `x-request-id` that is not 1 to 64 of `[A-Za-z0-9._:-]`, so
/// what lands in logs and echoes back is bounded and harmless; a new one replaces it.
async fn drop_odd_request_id(mut req: axum::extract::Request) -> axum::extract::Request {
    let sane = |v: &HeaderValue| {
        let b = v.as_bytes();
        (1..=64).contains(&b.len()) && b.iter().all(|c| c.is_ascii_alphanumeric() || b"._:-".contains(c))
    };
    let all: Vec<&HeaderValue> = req.headers().get_all(&REQUEST_ID).iter().collect();
    if !(all.len() == 1 && sane(all[0])) {
        req.headers_mut().remove(&REQUEST_ID);
    }
    req
}

/// axum answers a wrong method with an empty 405, and what its own extractors
/// cannot read (a path segment that is not UTF-8 once percent-decoded) with a
/// plain-text 4xx; give both the same error body as everything else.
async fn json_rejections(resp: axum::response::Response) -> axum::response::Response {
    use axum::response::IntoResponse;
    let status = resp.status();
    let plain_text = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    let allow = resp.headers().get(header::ALLOW).cloned();
    let description = if status == axum::http::StatusCode::METHOD_NOT_ALLOWED {
        "this endpoint does not take that HTTP method".to_string()
    } else if status.is_client_error() && plain_text {
        // axum's rejection texts say what was wrong and carry nothing secret.
        let text = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap_or_default();
        String::from_utf8_lossy(&text).trim().to_string()
    } else {
        return resp;
    };
    let mut out = ApiError::rejected(status, description).into_response();
    if let Some(a) = allow {
        out.headers_mut().insert(header::ALLOW, a);
    }
    out
}

/// The Content-Security-Policy of every page (web sign-in pages widen `form-action` to the app they return to).
pub(crate) const CSP: &str =
    "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'";

/// Headers on every response: pages that approve anything must not be framed or
/// sniffed; on an https server, browsers must never use plain http to it (HSTS).
fn with_security_headers(router: Router<AppState>, https: bool) -> Router<AppState> {
    let headers = [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    let router = headers.into_iter().fold(router, |r, (name, value): (HeaderName, &'static str)| {
        r.layer(SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value)))
    });
    if https {
        // A year; not includeSubDomains: other hosts under the domain are not ours to decide.
        router.layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ))
    } else {
        router
    }
}
