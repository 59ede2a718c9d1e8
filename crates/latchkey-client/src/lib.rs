//! Client library for a Latchkey server.
//!
//! Everything our CLI, tests and benchmark say to a server goes through
//! [`Client`]. OAuth failures come back as [`ClientError::Server`] with the
//! RFC 6749 `error` code, so callers match on `"authorization_pending"` and
//! friends exactly as the RFCs name them.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use latchkey_proto::api::{
    DecisionRequest, DecisionResponse, Me, PendingDeviceLogin, SignInRequest, SignInResponse,
};
use latchkey_proto::oauth::{
    DeviceAuthorization, Discovery, ErrorBody, Introspection, JwkSet, TokenResponse, UserInfo,
};
use serde::de::DeserializeOwned;
use std::time::Duration;

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
        Self {
            client_id: client_id.into(),
            client_secret: None,
        }
    }

    fn form<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut v = vec![("client_id", self.client_id.as_str())];
        if let Some(s) = &self.client_secret {
            v.push(("client_secret", s.as_str()));
        }
        v.extend_from_slice(extra);
        v
    }
}

/// A connection to one Latchkey server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
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
        Self {
            http,
            base: base_url.trim_end_matches('/').to_string(),
        }
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
            return serde_json::from_slice(&bytes)
                .map_err(|e| ClientError::Protocol(e.to_string()));
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(b) => Err(ClientError::Server {
                status: status.as_u16(),
                error: b.error,
                description: b.error_description,
            }),
            Err(_) => Err(ClientError::Server {
                status: status.as_u16(),
                error: "http_error".into(),
                description: Some(String::from_utf8_lossy(&bytes).chars().take(200).collect()),
            }),
        }
    }

    async fn post_form<T: DeserializeOwned>(
        &self,
        path: &str,
        form: &[(&str, &str)],
    ) -> ClientResult<T> {
        Self::decode(self.http.post(self.url(path)).form(form).send().await?).await
    }

    /// Reads the server's metadata (`/.well-known/openid-configuration`).
    pub async fn discover(&self) -> ClientResult<Discovery> {
        Self::decode(
            self.http
                .get(self.url("/.well-known/openid-configuration"))
                .send()
                .await?,
        )
        .await
    }

    /// The server's public signing keys.
    pub async fn jwks(&self) -> ClientResult<JwkSet> {
        Self::decode(self.http.get(self.url("/oauth/jwks")).send().await?).await
    }

    /// Starts a device login (RFC 8628 §3.1).
    pub async fn device_authorization(
        &self,
        app: &AppCredentials,
        scope: &str,
        device_name: Option<&str>,
    ) -> ClientResult<DeviceAuthorization> {
        let mut extra = vec![("scope", scope)];
        if let Some(n) = device_name {
            extra.push(("device_name", n));
        }
        self.post_form("/oauth/device_authorization", &app.form(&extra))
            .await
    }

    /// One RFC 8628 poll of the token endpoint.
    pub async fn poll_token(
        &self,
        app: &AppCredentials,
        device_code: &str,
    ) -> ClientResult<TokenResponse> {
        let form = app.form(&[
            ("grant_type", latchkey_proto::DEVICE_CODE_GRANT),
            ("device_code", device_code),
        ]);
        self.post_form("/oauth/token", &form).await
    }

    /// One call to the instant-approval endpoint: returns when the grant is
    /// decided, or `authorization_pending` after the server's wait timeout.
    pub async fn wait_token(
        &self,
        app: &AppCredentials,
        device_code: &str,
    ) -> ClientResult<TokenResponse> {
        self.post_form(
            "/oauth/device/wait",
            &app.form(&[("device_code", device_code)]),
        )
        .await
    }

    /// Waits for the user's decision: on the instant endpoint when the server has one,
    /// else by RFC 8628 polling that honours `interval` and `slow_down`.
    pub async fn wait_for_approval(
        &self,
        app: &AppCredentials,
        auth: &DeviceAuthorization,
    ) -> ClientResult<TokenResponse> {
        let instant = self
            .discover()
            .await
            .map(|d| !d.latchkey_device_wait_endpoint.is_empty())
            .unwrap_or(false);
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
    pub async fn refresh(
        &self,
        app: &AppCredentials,
        refresh_token: &str,
    ) -> ClientResult<TokenResponse> {
        let form = app.form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ]);
        self.post_form("/oauth/token", &form).await
    }

    /// RFC 7662 introspection.
    pub async fn introspect(
        &self,
        app: &AppCredentials,
        token: &str,
    ) -> ClientResult<Introspection> {
        self.post_form("/oauth/introspect", &app.form(&[("token", token)]))
            .await
    }

    /// RFC 7009 revocation.
    pub async fn revoke(&self, app: &AppCredentials, token: &str) -> ClientResult<()> {
        let resp = self
            .http
            .post(self.url("/oauth/revoke"))
            .form(&app.form(&[("token", token)]))
            .send()
            .await?;
        if resp.status().is_success() {
            return Ok(());
        }
        Self::decode::<serde_json::Value>(resp).await.map(|_| ())
    }

    /// OIDC userinfo for an access token.
    pub async fn userinfo(&self, access_token: &str) -> ClientResult<UserInfo> {
        Self::decode(
            self.http
                .get(self.url("/oauth/userinfo"))
                .bearer_auth(access_token)
                .send()
                .await?,
        )
        .await
    }

    /// Signs in with a password; the returned session token authorises the JSON API.
    pub async fn sign_in(&self, username: &str, password: &str) -> ClientResult<SignInResponse> {
        let body = SignInRequest {
            username: username.into(),
            password: password.into(),
        };
        Self::decode(
            self.http
                .post(self.url("/api/v1/session"))
                .json(&body)
                .send()
                .await?,
        )
        .await
    }

    /// Ends a session.
    pub async fn sign_out(&self, session_token: &str) -> ClientResult<()> {
        let resp = self
            .http
            .delete(self.url("/api/v1/session"))
            .bearer_auth(session_token)
            .send()
            .await?;
        if resp.status().is_success() {
            return Ok(());
        }
        Self::decode::<serde_json::Value>(resp).await.map(|_| ())
    }

    /// Who the session belongs to.
    pub async fn me(&self, session_token: &str) -> ClientResult<Me> {
        Self::decode(
            self.http
                .get(self.url("/api/v1/me"))
                .bearer_auth(session_token)
                .send()
                .await?,
        )
        .await
    }

    /// What approving `user_code` would let in.
    pub async fn lookup_device_login(
        &self,
        session_token: &str,
        user_code: &str,
    ) -> ClientResult<PendingDeviceLogin> {
        let body = serde_json::json!({ "user_code": user_code });
        Self::decode(
            self.http
                .post(self.url("/api/v1/device/lookup"))
                .bearer_auth(session_token)
                .json(&body)
                .send()
                .await?,
        )
        .await
    }

    /// Approves (`approve = true`) or denies a device login.
    pub async fn decide_device_login(
        &self,
        session_token: &str,
        user_code: &str,
        approve: bool,
    ) -> ClientResult<DecisionResponse> {
        let body = DecisionRequest {
            user_code: user_code.into(),
            decision: if approve { "approve" } else { "deny" }.into(),
        };
        Self::decode(
            self.http
                .post(self.url("/api/v1/device/decision"))
                .bearer_auth(session_token)
                .json(&body)
                .send()
                .await?,
        )
        .await
    }
}
