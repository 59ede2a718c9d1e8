//! Client library for a Latchkey server.
//!
//! Everything our CLI, tests and benchmark say to a server goes through
//! [`Client`]. OAuth failures come back as [`ClientError::Server`] with the
//! RFC 6749 `error` code, so callers match on `"authorization_pending"` and
//! friends exactly as the RFCs name them.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod account;
pub mod audit;
pub mod channel;
pub mod dpop;
pub mod outbox;
pub mod pairing;
pub mod profile;
pub mod seal;
pub mod trust_store;
pub mod trusted;

use dpop::DeviceKey;
use latchkey_proto::api::{
    Capture, DecisionRequest, DecisionResponse, DeviceInfo, DeviceUpdate, EnrollRequest, EnrollResponse,
    EnrollmentKeyCreated, EnrollmentKeyInfo, EnrollmentKeyRequest, IngestRequest, IngestResponse, KindDeclaration,
    KindInfo, LocationEntry, LookupRequest, Me, PasswordChange, PendingDeviceLogin, PullResponse, SignInInfo,
    SignInRequest, SignInResponse,
};
use latchkey_proto::oauth::{
    DeviceAuthorization, Discovery, ErrorBody, Introspection, JwkSet, TokenResponse, UserInfo,
};
use latchkey_proto::{form, paths};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

/// How much longer than its `wait` a long-polling pull may take before the client gives up.
const PULL_GRACE: Duration = Duration::from_secs(30);

/// What went wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached or the connection failed.
    #[error("cannot reach the Latchkey server: {0}")]
    Http(#[from] reqwest::Error),
    /// The server refused, with an RFC 6749 style error.
    #[error("the server said {error} (HTTP {status}){}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Server {
        /// HTTP status.
        status: u16,
        /// Error code, e.g. `authorization_pending`.
        error: String,
        /// The server's explanation.
        description: Option<String>,
    },
    /// The server answered something that is not what the protocol says.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// The device key could not sign.
    #[error(transparent)]
    Key(#[from] dpop::KeyError),
}

impl ClientError {
    /// The OAuth error code, if the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Server { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The HTTP status, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Server { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Result of a client call.
pub type ClientResult<T> = Result<T, ClientError>;

/// How an app identifies itself to the token endpoints.
#[derive(Debug, Clone)]
pub struct AppCredentials {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`, for confidential apps.
    pub client_secret: Option<String>,
}

impl AppCredentials {
    /// A public app (no secret), like the built-in `latchkey-cli`.
    pub fn public(client_id: impl Into<String>) -> Self {
        Self { client_id: client_id.into(), client_secret: None }
    }

    fn form<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut v = vec![(form::CLIENT_ID, self.client_id.as_str())];
        if let Some(s) = &self.client_secret {
            v.push((form::CLIENT_SECRET, s.as_str()));
        }
        v.extend_from_slice(extra);
        v
    }
}

/// How a call to the account API authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    /// A session token from [`Client::sign_in`].
    Session(&'a str),
    /// A device's own access token (sent with a DPoP proof when the client has a device key).
    Access(&'a str),
}

impl<'a> From<&'a str> for Auth<'a> {
    fn from(s: &'a str) -> Self {
        Auth::Session(s)
    }
}

impl<'a> From<&'a String> for Auth<'a> {
    fn from(s: &'a String) -> Self {
        Auth::Session(s)
    }
}

/// What a device says about itself when it asks to sign in (Latchkey extensions).
#[derive(Debug, Clone, Default)]
pub struct DeviceParams {
    /// Display name.
    pub name: Option<String>,
    /// Explicit slug.
    pub slug: Option<String>,
    /// Location (`later` to defer).
    pub location: Option<String>,
    /// Operating system and architecture.
    pub platform: Option<String>,
    /// Client software version.
    pub client_version: Option<String>,
}

/// A connection to one Latchkey server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<Arc<DeviceKey>>,
}

impl Client {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base_url: &str) -> ClientResult<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("latchkey-client/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self::with_http(http, base_url))
    }

    /// A client sharing an existing `reqwest::Client` (connection pool).
    pub fn with_http(http: reqwest::Client, base_url: &str) -> Self {
        Self { http, base: base_url.trim_end_matches('/').to_string(), key: None }
    }

    /// The same client, signing every token request and account call with `key` (DPoP).
    pub fn with_device_key(mut self, key: Arc<DeviceKey>) -> Self {
        self.key = Some(key);
        self
    }

    /// Adds a DPoP proof for `method path` when this client has a device key.
    fn prove(
        &self,
        req: reqwest::RequestBuilder,
        method: &str,
        path: &str,
        token: Option<&str>,
    ) -> ClientResult<reqwest::RequestBuilder> {
        Ok(match &self.key {
            Some(k) => req.header("DPoP", k.proof(method, &self.url(path), token)?),
            None => req,
        })
    }

    /// Authenticates an account-API request.
    fn auth(
        &self,
        req: reqwest::RequestBuilder,
        method: &str,
        path: &str,
        auth: Auth<'_>,
    ) -> ClientResult<reqwest::RequestBuilder> {
        match auth {
            Auth::Session(t) => Ok(req.bearer_auth(t)),
            Auth::Access(t) if self.key.is_some() => {
                self.prove(req.header(reqwest::header::AUTHORIZATION, format!("DPoP {t}")), method, path, Some(t))
            }
            Auth::Access(t) => Ok(req.bearer_auth(t)),
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<serde_json::Value>,
    ) -> ClientResult<T> {
        let mut req = self.http.request(method.clone(), self.url(path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        Self::decode(self.auth(req, method.as_str(), path, auth)?.send().await?).await
    }

    /// Like [`Client::call`] for answers without a body (204).
    async fn call_empty(
        &self,
        method: reqwest::Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<serde_json::Value>,
    ) -> ClientResult<()> {
        let mut req = self.http.request(method.clone(), self.url(path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = self.auth(req, method.as_str(), path, auth)?.send().await?;
        if resp.status().is_success() {
            return Ok(());
        }
        Self::decode::<serde_json::Value>(resp).await.map(|_| ())
    }

    /// Opens a long-lived `GET` (Server-Sent Events) at `path?after=N`; the proof covers the URL without its query.
    async fn open_stream(&self, path: &str, after: i64, auth: Auth<'_>) -> ClientResult<reqwest::Response> {
        let req = self
            .http
            .get(self.url(path))
            .query(&[("after", after)])
            .header(reqwest::header::ACCEPT, "text/event-stream");
        let resp = self.auth(req, "GET", path, auth)?.send().await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(Self::decode::<serde_json::Value>(resp)
            .await
            .err()
            .unwrap_or_else(|| ClientError::Protocol("the channel failed".into())))
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn decode<T: DeserializeOwned>(resp: reqwest::Response) -> ClientResult<T> {
        let status = resp.status();
        let bytes = resp.bytes().await?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol(e.to_string()));
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(b) => {
                Err(ClientError::Server { status: status.as_u16(), error: b.error, description: b.error_description })
            }
            Err(_) => Err(ClientError::Server {
                status: status.as_u16(),
                error: "http_error".into(),
                description: Some(String::from_utf8_lossy(&bytes).chars().take(200).collect()),
            }),
        }
    }

    async fn post_form<T: DeserializeOwned>(&self, path: &str, form: &[(&str, &str)]) -> ClientResult<T> {
        let req = self.prove(self.http.post(self.url(path)).form(form), "POST", path, None)?;
        Self::decode(req.send().await?).await
    }

    /// The audit log's verifier keys (public).
    pub async fn audit_keys(&self) -> ClientResult<latchkey_proto::api::AuditKeys> {
        Self::decode(self.http.get(self.url(paths::AUDIT_KEYS)).send().await?).await
    }

    /// A consistency proof from the tree of `old` leaves to the latest checkpoint, which comes with it (public).
    pub async fn audit_consistency(&self, old: u64) -> ClientResult<latchkey_proto::api::AuditConsistency> {
        let req = self.http.get(self.url(paths::AUDIT_CONSISTENCY)).query(&[("old", old)]);
        Self::decode(req.send().await?).await
    }

    /// An inclusion proof for one of the caller's audit entries, in the latest checkpoint.
    pub async fn audit_inclusion<'a>(
        &self,
        auth: impl Into<Auth<'a>>,
        seq: i64,
    ) -> ClientResult<latchkey_proto::api::AuditInclusion> {
        let path = format!("{}?seq={seq}", paths::AUDIT_INCLUSION);
        let req = self.http.get(self.url(&path));
        Self::decode(self.auth(req, "GET", paths::AUDIT_INCLUSION, auth.into())?.send().await?).await
    }

    /// Reads the server's metadata (`/.well-known/openid-configuration`).
    pub async fn discover(&self) -> ClientResult<Discovery> {
        Self::decode(self.http.get(self.url(paths::OPENID_CONFIGURATION)).send().await?).await
    }

    /// The server's public signing keys.
    pub async fn jwks(&self) -> ClientResult<JwkSet> {
        Self::decode(self.http.get(self.url(paths::JWKS)).send().await?).await
    }

    /// Starts a device login (RFC 8628 §3.1).
    pub async fn device_authorization(
        &self,
        app: &AppCredentials,
        scope: &str,
        device_name: Option<&str>,
    ) -> ClientResult<DeviceAuthorization> {
        let params = DeviceParams { name: device_name.map(str::to_string), ..DeviceParams::default() };
        self.device_authorization_as(app, scope, &params).await
    }

    /// Starts a device login, saying what the device should be registered as.
    pub async fn device_authorization_as(
        &self,
        app: &AppCredentials,
        scope: &str,
        device: &DeviceParams,
    ) -> ClientResult<DeviceAuthorization> {
        let mut extra = vec![(form::SCOPE, scope)];
        let fields = [
            (form::DEVICE_NAME, &device.name),
            (form::DEVICE_SLUG, &device.slug),
            (form::DEVICE_LOCATION, &device.location),
            (form::DEVICE_PLATFORM, &device.platform),
            (form::CLIENT_VERSION, &device.client_version),
        ];
        for (k, v) in &fields {
            if let Some(v) = v {
                extra.push((k, v.as_str()));
            }
        }
        self.post_form(paths::DEVICE_AUTHORIZATION, &app.form(&extra)).await
    }

    /// One RFC 8628 poll of the token endpoint.
    pub async fn poll_token(&self, app: &AppCredentials, device_code: &str) -> ClientResult<TokenResponse> {
        let params =
            app.form(&[(form::GRANT_TYPE, latchkey_proto::DEVICE_CODE_GRANT), (form::DEVICE_CODE, device_code)]);
        self.post_form(paths::TOKEN, &params).await
    }

    /// One call to the instant-approval endpoint: returns when the grant is
    /// decided, or `authorization_pending` after the server's wait timeout.
    pub async fn wait_token(&self, app: &AppCredentials, device_code: &str) -> ClientResult<TokenResponse> {
        self.post_form(paths::DEVICE_WAIT, &app.form(&[(form::DEVICE_CODE, device_code)])).await
    }

    /// Waits for the user's decision: on the instant endpoint when the server has one,
    /// else by RFC 8628 polling that honours `interval` and `slow_down`.
    pub async fn wait_for_approval(
        &self,
        app: &AppCredentials,
        auth: &DeviceAuthorization,
    ) -> ClientResult<TokenResponse> {
        let instant = self.discover().await.map(|d| !d.latchkey_device_wait_endpoint.is_empty()).unwrap_or(false);
        let mut interval = Duration::from_secs(auth.interval.max(1) as u64);
        loop {
            let r = if instant {
                self.wait_token(app, &auth.device_code).await
            } else {
                tokio::time::sleep(interval).await;
                self.poll_token(app, &auth.device_code).await
            };
            match r {
                Err(e) if e.code() == Some("authorization_pending") => continue,
                Err(e) if e.code() == Some("slow_down") => {
                    interval += Duration::from_secs(5);
                    continue;
                }
                other => return other,
            }
        }
    }

    /// Exchanges a refresh token (rotating it).
    pub async fn refresh(&self, app: &AppCredentials, refresh_token: &str) -> ClientResult<TokenResponse> {
        let params = app.form(&[(form::GRANT_TYPE, form::REFRESH_TOKEN_GRANT), (form::REFRESH_TOKEN, refresh_token)]);
        self.post_form(paths::TOKEN, &params).await
    }

    /// RFC 7662 introspection.
    pub async fn introspect(&self, app: &AppCredentials, token: &str) -> ClientResult<Introspection> {
        self.post_form(paths::INTROSPECT, &app.form(&[(form::TOKEN, token)])).await
    }

    /// RFC 7009 revocation.
    pub async fn revoke(&self, app: &AppCredentials, token: &str) -> ClientResult<()> {
        let resp = self.http.post(self.url(paths::REVOKE)).form(&app.form(&[(form::TOKEN, token)])).send().await?;
        if resp.status().is_success() {
            return Ok(());
        }
        Self::decode::<serde_json::Value>(resp).await.map(|_| ())
    }

    /// OIDC userinfo for an access token.
    pub async fn userinfo(&self, access_token: &str) -> ClientResult<UserInfo> {
        self.call(reqwest::Method::GET, paths::USERINFO, Auth::Access(access_token), None).await
    }

    /// Signs in with a password; the returned session token authorises the JSON API.
    pub async fn sign_in(&self, username: &str, password: &str) -> ClientResult<SignInResponse> {
        let body = SignInRequest { username: username.into(), password: password.into() };
        Self::decode(self.http.post(self.url(paths::SESSION)).json(&body).send().await?).await
    }

    /// Ends a session.
    pub async fn sign_out<'a>(&self, auth: impl Into<Auth<'a>>) -> ClientResult<()> {
        let req = self.auth(self.http.delete(self.url(paths::SESSION)), "DELETE", paths::SESSION, auth.into())?;
        let resp = req.send().await?;
        if resp.status().is_success() {
            return Ok(());
        }
        Self::decode::<serde_json::Value>(resp).await.map(|_| ())
    }

    /// Changes the signed-in user's password; the server ends their other sessions.
    pub async fn change_password<'a>(
        &self,
        auth: impl Into<Auth<'a>>,
        current_password: &str,
        new_password: &str,
    ) -> ClientResult<()> {
        let body = PasswordChange { current_password: current_password.into(), new_password: new_password.into() };
        let req = self.http.post(self.url(paths::PASSWORD)).json(&body);
        let resp = self.auth(req, "POST", paths::PASSWORD, auth.into())?.send().await?;
        if resp.status().is_success() {
            return Ok(());
        }
        Self::decode::<serde_json::Value>(resp).await.map(|_| ())
    }

    /// Who is signed in, and from which device.
    pub async fn me<'a>(&self, auth: impl Into<Auth<'a>>) -> ClientResult<Me> {
        self.call(reqwest::Method::GET, paths::ME, auth.into(), None).await
    }

    /// What approving `user_code` would let in.
    pub async fn lookup_device_login<'a>(
        &self,
        auth: impl Into<Auth<'a>>,
        user_code: &str,
    ) -> ClientResult<PendingDeviceLogin> {
        let body = serde_json::to_value(LookupRequest { user_code: user_code.into() })
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.call(reqwest::Method::POST, paths::DEVICE_LOOKUP, auth.into(), Some(body)).await
    }

    /// Approves (`approve = true`) or denies a device login.
    pub async fn decide_device_login<'a>(
        &self,
        auth: impl Into<Auth<'a>>,
        user_code: &str,
        approve: bool,
    ) -> ClientResult<DecisionResponse> {
        let body =
            DecisionRequest { user_code: user_code.into(), decision: if approve { "approve" } else { "deny" }.into() };
        let body = serde_json::to_value(body).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.call(reqwest::Method::POST, paths::DEVICE_DECISION, auth.into(), Some(body)).await
    }

    /// The signed-in user's devices.
    pub async fn devices<'a>(&self, auth: impl Into<Auth<'a>>) -> ClientResult<Vec<DeviceInfo>> {
        self.call(reqwest::Method::GET, paths::DEVICES, auth.into(), None).await
    }

    /// The signed-in user's sign-ins that are not devices, newest first.
    pub async fn sign_ins<'a>(&self, auth: impl Into<Auth<'a>>) -> ClientResult<Vec<SignInInfo>> {
        self.call(reqwest::Method::GET, paths::SIGN_INS, auth.into(), None).await
    }

    /// Ends one of the user's sign-ins at once; returns what it was.
    pub async fn end_sign_in<'a>(&self, auth: impl Into<Auth<'a>>, id: &str) -> ClientResult<SignInInfo> {
        self.call(reqwest::Method::DELETE, &paths::with_id(paths::SIGN_IN, &path_segment(id)), auth.into(), None).await
    }

    /// Renames and/or moves a device.
    pub async fn update_device<'a>(
        &self,
        auth: impl Into<Auth<'a>>,
        id: &str,
        update: &DeviceUpdate,
    ) -> ClientResult<DeviceInfo> {
        let body = serde_json::to_value(update).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.call(reqwest::Method::PATCH, &paths::with_id(paths::DEVICE, &path_segment(id)), auth.into(), Some(body))
            .await
    }

    /// Revokes a device: its tokens stop working at once.
    pub async fn revoke_device<'a>(&self, auth: impl Into<Auth<'a>>, id: &str) -> ClientResult<DeviceInfo> {
        self.call(reqwest::Method::DELETE, &paths::with_id(paths::DEVICE, &path_segment(id)), auth.into(), None).await
    }

    /// A device's location history, oldest first.
    pub async fn device_locations<'a>(&self, auth: impl Into<Auth<'a>>, id: &str) -> ClientResult<Vec<LocationEntry>> {
        let path = paths::with_id(paths::DEVICE_LOCATIONS, &path_segment(id));
        self.call(reqwest::Method::GET, &path, auth.into(), None).await
    }

    /// Creates an enrollment key for one of the caller's own new machines.
    pub async fn create_enrollment_key<'a>(
        &self,
        auth: impl Into<Auth<'a>>,
        req: &EnrollmentKeyRequest,
    ) -> ClientResult<EnrollmentKeyCreated> {
        let body = serde_json::to_value(req).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.call(reqwest::Method::POST, paths::ENROLLMENT_KEYS, auth.into(), Some(body)).await
    }

    /// The caller's enrollment keys (without secrets).
    pub async fn enrollment_keys<'a>(&self, auth: impl Into<Auth<'a>>) -> ClientResult<Vec<EnrollmentKeyInfo>> {
        self.call(reqwest::Method::GET, paths::ENROLLMENT_KEYS, auth.into(), None).await
    }

    /// Declares one of the calling app's event kinds (safe to repeat; 409 if its identity would change).
    pub async fn declare_event_kind<'a>(
        &self,
        auth: impl Into<Auth<'a>>,
        name: &str,
        declaration: &KindDeclaration,
    ) -> ClientResult<KindInfo> {
        let body = serde_json::to_value(declaration).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let path = paths::with_id(paths::EVENT_KIND, &path_segment(name));
        self.call(reqwest::Method::PUT, &path, auth.into(), Some(body)).await
    }

    /// The calling app's event kinds.
    pub async fn event_kinds<'a>(&self, auth: impl Into<Auth<'a>>) -> ClientResult<Vec<KindInfo>> {
        self.call(reqwest::Method::GET, paths::EVENT_KINDS, auth.into(), None).await
    }

    /// Sends a batch of captures (at most 1,000); one result per capture, in order. Safe to resend.
    pub async fn push_events<'a>(
        &self,
        auth: impl Into<Auth<'a>>,
        captures: &[Capture],
    ) -> ClientResult<IngestResponse> {
        let body = serde_json::to_value(IngestRequest { events: captures.to_vec() })
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.call(reqwest::Method::POST, paths::EVENTS, auth.into(), Some(body)).await
    }

    /// The user's events changed after cursor `after` (at most `limit`); when there are none yet,
    /// waits up to `wait_secs` seconds (the server caps it at 60) for some to arrive.
    pub async fn pull_events<'a>(
        &self,
        auth: impl Into<Auth<'a>>,
        after: i64,
        limit: i64,
        wait_secs: u64,
    ) -> ClientResult<PullResponse> {
        let path = paths::EVENTS;
        let query = [("after", after.to_string()), ("limit", limit.to_string()), ("wait", wait_secs.to_string())];
        // The client has no overall timeout; a pull that hangs longer than the server may wait is dead.
        let timeout = Duration::from_secs(wait_secs.min(3600)) + PULL_GRACE;
        let req = self.http.get(self.url(path)).query(&query).timeout(timeout);
        Self::decode(self.auth(req, "GET", path, auth.into())?.send().await?).await
    }

    /// Provisions this machine with an enrollment key (bound to the client's device key, if it has one).
    pub async fn enroll(&self, req: &EnrollRequest) -> ClientResult<EnrollResponse> {
        let path = paths::ENROLL;
        let http = self.prove(self.http.post(self.url(path)).json(req), "POST", path, None)?;
        Self::decode(http.send().await?).await
    }
}

/// Percent-encodes one path segment.
fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
