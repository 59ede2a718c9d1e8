//! The one error type of the HTTP layer and its mapping to responses.
//!
//! Handlers return `ApiError`; this file alone decides statuses and bodies.
//! Every body has the RFC 6749 §5.2 shape (`error`, `error_description`), so
//! OAuth libraries and our own client parse failures the same way.
//! Internal details are logged, never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use latchkey_proto::oauth::ErrorBody;
use latchkey_store::StoreError;

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A protocol-level error with its code, status and explanation.
    #[error("{code}: {description}")]
    Protocol {
        /// HTTP status.
        status: StatusCode,
        /// RFC 6749 style error code.
        code: &'static str,
        /// What went wrong and what to do, for a person.
        description: String,
    },
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug or environment failure inside the server.
    #[error("internal error: {0}")]
    Internal(String),
}

macro_rules! constructors {
    ($($(#[$doc:meta])* $name:ident => ($status:expr, $code:literal);)*) => {
        impl ApiError {
            $(
                $(#[$doc])*
                pub fn $name(description: impl Into<String>) -> Self {
                    ApiError::Protocol { status: $status, code: $code, description: description.into() }
                }
            )*
        }
    };
}

constructors! {
    /// 400 `invalid_request`: malformed or missing parameters.
    invalid_request => (StatusCode::BAD_REQUEST, "invalid_request");
    /// 401 `invalid_client`: unknown client or wrong secret.
    invalid_client => (StatusCode::UNAUTHORIZED, "invalid_client");
    /// 400 `invalid_grant`: unknown, spent or foreign code or token.
    invalid_grant => (StatusCode::BAD_REQUEST, "invalid_grant");
    /// 400 `unauthorized_client`: the app may not use this grant.
    unauthorized_client => (StatusCode::BAD_REQUEST, "unauthorized_client");
    /// 400 `unsupported_grant_type`.
    unsupported_grant_type => (StatusCode::BAD_REQUEST, "unsupported_grant_type");
    /// 400 `unsupported_token_type` (RFC 7009).
    unsupported_token_type => (StatusCode::BAD_REQUEST, "unsupported_token_type");
    /// 400 `invalid_scope`.
    invalid_scope => (StatusCode::BAD_REQUEST, "invalid_scope");
    /// 400 `authorization_pending` (RFC 8628 §3.5).
    authorization_pending => (StatusCode::BAD_REQUEST, "authorization_pending");
    /// 400 `slow_down` (RFC 8628 §3.5).
    slow_down => (StatusCode::BAD_REQUEST, "slow_down");
    /// 400 `access_denied` (RFC 8628 §3.5).
    access_denied => (StatusCode::BAD_REQUEST, "access_denied");
    /// 400 `expired_token` (RFC 8628 §3.5).
    expired_token => (StatusCode::BAD_REQUEST, "expired_token");
    /// 400 `invalid_dpop_proof` (RFC 9449 §5): a token request's proof that cannot be honoured.
    invalid_dpop_proof => (StatusCode::BAD_REQUEST, "invalid_dpop_proof");
    /// 401 `invalid_token`: a bearer token that is missing, expired or revoked (RFC 6750).
    invalid_token => (StatusCode::UNAUTHORIZED, "invalid_token");
    /// 401 `unauthenticated`: the JSON API needs a signed-in session.
    unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated");
    /// 401 `invalid_credentials`: wrong username or password.
    invalid_credentials => (StatusCode::UNAUTHORIZED, "invalid_credentials");
    /// 403 `forbidden`: signed in, but not allowed (e.g. a bad CSRF token).
    forbidden => (StatusCode::FORBIDDEN, "forbidden");
    /// 403 `access_denied` (RFC 6749 §4.1.2.1's code): this kind of credential may never do this.
    credential_refused => (StatusCode::FORBIDDEN, "access_denied");
    /// 503 `temporarily_unavailable`: not ready yet; try again shortly.
    unavailable => (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
    /// 404 `not_found`.
    not_found => (StatusCode::NOT_FOUND, "not_found");
    /// 409 `conflict`: the thing exists or was already decided.
    conflict => (StatusCode::CONFLICT, "conflict");
    /// 410 `expired`: it existed but its time is over.
    gone => (StatusCode::GONE, "expired");
    /// 413 `request_too_large`.
    too_large => (StatusCode::PAYLOAD_TOO_LARGE, "request_too_large");
    /// 415 `unsupported_media_type`.
    unsupported_media_type => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    /// 429 `too_many_requests`.
    too_many_requests => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
}

/// A stopped account asking an account API for something: 403 with the reason.
impl From<latchkey_domain::account::AccountRefusal> for ApiError {
    fn from(r: latchkey_domain::account::AccountRefusal) -> Self {
        use latchkey_domain::account::AccountRefusal;
        match r {
            // The owner needs the time to know how long to wait, and the other ways in.
            AccountRefusal::Locked { until } => ApiError::forbidden(format!(
                "this account is locked until {} after repeated wrong passwords; \
                 wait, sign in from another network, or ask an administrator",
                utc(until)
            )),
            AccountRefusal::Disabled => ApiError::forbidden(r.to_string()),
        }
    }
}

/// A passkey change the account's rules refuse, or a passkey that is not the caller's.
impl From<latchkey_store::PasskeyRefusal> for ApiError {
    fn from(r: latchkey_store::PasskeyRefusal) -> Self {
        use latchkey_store::PasskeyRefusal;
        match r {
            PasskeyRefusal::Account(a) => a.into(),
            PasskeyRefusal::Method(m) => ApiError::conflict(m.to_string()),
            PasskeyRefusal::Unknown => ApiError::not_found("no such passkey of yours"),
        }
    }
}

/// A WebAuthn answer webauthn-rs did not accept: the same refusal whatever the
/// reason (forged, another site's, wrong challenge), which is logged, not sent.
impl From<webauthn_rs::prelude::WebauthnError> for ApiError {
    fn from(e: webauthn_rs::prelude::WebauthnError) -> Self {
        tracing::info!(error = %e, "a passkey answer was refused");
        ApiError::invalid_credentials("the passkey was not accepted; try again")
    }
}

impl From<latchkey_store::TrustRefusal> for ApiError {
    fn from(r: latchkey_store::TrustRefusal) -> Self {
        use latchkey_store::TrustRefusal;
        match r {
            TrustRefusal::UnknownDevice => {
                ApiError::not_found("no such device among yours (with a key); `latchkey devices list` shows their IDs")
            }
            TrustRefusal::SelfTrust => ApiError::invalid_request("a device cannot trust itself"),
            TrustRefusal::Revoked => ApiError::conflict("the device is revoked; it can neither trust nor be trusted"),
            TrustRefusal::WrongKey => ApiError::Protocol {
                status: StatusCode::CONFLICT,
                code: "wrong_key",
                description: "that is not the device's current key; fetch its keys again and compare the fingerprint"
                    .into(),
            },
            TrustRefusal::BadSignature => ApiError::Protocol {
                status: StatusCode::BAD_REQUEST,
                code: "invalid_signature",
                description: "the signature does not match this device's key and the statement".into(),
            },
            TrustRefusal::Invalid(why) => ApiError::invalid_request(why),
        }
    }
}

impl From<latchkey_store::SessionRefusal> for ApiError {
    fn from(r: latchkey_store::SessionRefusal) -> Self {
        use latchkey_store::SessionRefusal as R;
        let refused = |status, code, description: String| ApiError::Protocol { status, code, description };
        match r {
            R::NotFound => ApiError::not_found("no such trusted session of this device"),
            R::NotMember => ApiError::forbidden("this device is not a member of the session (any more)"),
            R::NotCreator => {
                ApiError::forbidden("only the device that made the session can close it; leave it instead")
            }
            R::Ended => ApiError::gone("the session is closed or expired"),
            R::Invitation(e) => refused(StatusCode::BAD_REQUEST, "invalid_invitation", e.to_string()),
            R::NotNeeded => ApiError::conflict("no invitations are needed now (another member issued them)"),
            R::UnknownInvitation => {
                ApiError::not_found("no invitation with this nonce for this device in this session")
            }
            R::InvitationUsed => {
                refused(StatusCode::CONFLICT, "invitation_used", "this invitation was used already".into())
            }
            R::InvitationExpired => refused(
                StatusCode::CONFLICT,
                "invitation_expired",
                "this invitation expired or is for an older session key; wait for a fresh one".into(),
            ),
            R::BadSignature => refused(
                StatusCode::BAD_REQUEST,
                "invalid_signature",
                "the join signature does not match this device's key".into(),
            ),
            R::RekeyNeeded => refused(
                StatusCode::CONFLICT,
                "rekey_needed",
                "the members changed; a member must issue a new session key before messages flow".into(),
            ),
            R::WrongEpoch(current) => refused(
                StatusCode::CONFLICT,
                "wrong_epoch",
                format!("the session's key generation is {current}; encrypt under it"),
            ),
            R::OutOfOrder(expected) => refused(
                StatusCode::CONFLICT,
                "out_of_order",
                format!("this sender's next message must have seq {expected}"),
            ),
        }
    }
}

/// A moment as people read it: `2026-01-02 03:04:05 UTC`.
fn utc(t: latchkey_domain::Timestamp) -> String {
    let secs = u64::try_from(t.as_secs()).unwrap_or(0);
    match std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(secs)) {
        Some(t) => humantime::format_rfc3339_seconds(t).to_string().replace('T', " ").replace('Z', " UTC"),
        None => format!("{} ms after 1970", t.as_millis()),
    }
}

impl ApiError {
    /// A request axum itself refused before a handler ran, with axum's status
    /// and the code this file uses for that status.
    pub fn rejected(status: StatusCode, description: String) -> Self {
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "request_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            _ => "invalid_request",
        };
        let description = if description.is_empty() { "the request is not valid".into() } else { description };
        ApiError::Protocol { status, code, description }
    }

    /// Status, code and the description safe to show.
    pub fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            ApiError::Protocol { status, code, description } => (*status, code, description.clone()),
            ApiError::Store(StoreError::Unavailable(_)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the server cannot reach its database right now; try again shortly".into(),
            ),
            ApiError::Store(StoreError::Conflict(what)) => {
                (StatusCode::CONFLICT, "conflict", format!("{what} already exists"))
            }
            ApiError::Store(_) | ApiError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "server_error", "the server failed; this is logged".into())
            }
        }
    }

    /// Logs what the client will not see.
    pub fn log(&self) {
        match self {
            ApiError::Protocol { status, code, .. } if status.is_server_error() => {
                tracing::error!(code, "{self}")
            }
            ApiError::Protocol { status, code, description } => {
                tracing::info!(status = status.as_u16(), code, description, "request refused")
            }
            ApiError::Store(StoreError::Unavailable(e)) => {
                tracing::warn!(error = %e, "database unavailable")
            }
            ApiError::Store(_) | ApiError::Internal(_) => {
                tracing::error!(error = %self, "request failed")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let (status, code, description) = self.parts();
        let body = ErrorBody { error: code.to_string(), error_description: Some(description) };
        let mut resp = (status, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::UNAUTHORIZED {
            let challenge =
                if code == "invalid_client" { "Basic realm=\"latchkey\"" } else { "Bearer realm=\"latchkey\"" };
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        resp
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
