//! Request extractors that fail with RFC-style errors instead of axum's plain-text ones.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;
use std::net::{IpAddr, SocketAddr};

/// Largest request body accepted, in bytes. OAuth and API bodies are tiny.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

fn content_type_is(headers: &HeaderMap, want: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(want))
}

async fn body_bytes(req: Request, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| ApiError::too_large(format!("the request body is larger than {limit} bytes")))
}

/// An `application/x-www-form-urlencoded` body (what OAuth endpoints take).
pub struct Form<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if !content_type_is(req.headers(), "application/x-www-form-urlencoded") {
            return Err(ApiError::invalid_request(
                "send the parameters as application/x-www-form-urlencoded (RFC 6749 §3.2)",
            ));
        }
        let bytes = body_bytes(req, MAX_BODY_BYTES).await?;
        // serde_urlencoded refuses repeated fields, which RFC 6749 §3.1 forbids too.
        serde_urlencoded::from_bytes(&bytes)
            .map(Form)
            .map_err(|e| ApiError::invalid_request(format!("the form body is not valid: {e}")))
    }
}

/// A JSON body (what Latchkey's own API takes) of at most `LIMIT` bytes.
pub struct Json<T, const LIMIT: usize = MAX_BODY_BYTES>(pub T);

impl<T: DeserializeOwned, S: Send + Sync, const LIMIT: usize> FromRequest<S> for Json<T, LIMIT> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if !content_type_is(req.headers(), "application/json") {
            return Err(ApiError::unsupported_media_type("send a JSON body with Content-Type: application/json"));
        }
        let bytes = body_bytes(req, LIMIT).await?;
        serde_json::from_slice(&bytes).map(Json).map_err(|e| {
            // serde names Rust types in some messages; keep only what helps the caller.
            let msg = e.to_string();
            let msg = if msg.contains("struct ") {
                format!("a field is missing or mistyped (line {}, column {})", e.line(), e.column())
            } else {
                msg
            };
            ApiError::invalid_request(format!("the JSON body is not valid: {msg}"))
        })
    }
}

/// Where the request came from: the peer address, or `X-Forwarded-For` behind a trusted proxy.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if state.config.trust_proxy_headers {
            // The right-most entry is the one our proxy appended; anything left of it
            // came from the client and could say anything.
            let forwarded = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .last()
                .and_then(|v| v.trim().parse::<IpAddr>().ok());
            if let Some(ip) = forwarded {
                return Ok(ClientIp(ip));
            }
        }
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ci| ClientIp(ci.0.ip()))
            .ok_or_else(|| ApiError::Internal("the server was started without connection info".into()))
    }
}

/// The `User-Agent` header, shortened to what a person can read.
#[derive(Debug, Clone)]
pub struct UserAgent(pub String);

impl<S: Send + Sync> FromRequestParts<S> for UserAgent {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ua = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("unknown");
        Ok(UserAgent(ua.chars().take(200).collect()))
    }
}

/// Whether two addresses look like the same network (IPv4 /24, IPv6 /64): a
/// device and its approver far apart is the signature of code phishing.
pub fn same_network(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets()[..3] == b.octets()[..3],
        (IpAddr::V6(a), IpAddr::V6(b)) => a.segments()[..4] == b.segments()[..4],
        (a, b) => {
            let norm = |ip: IpAddr| match ip {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
                v4 => v4,
            };
            let (a, b) = (norm(a), norm(b));
            matches!((a, b), (IpAddr::V4(_), IpAddr::V4(_))) && same_network(a, b)
        }
    }
}

/// A query string, failing with an RFC-style error instead of axum's plain text.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or(""))
            .map(Query)
            .map_err(|e| ApiError::invalid_request(format!("the query string is not valid: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert!(same_network(ip("10.0.0.1"), ip("10.0.0.200")));
        assert!(!same_network(ip("10.0.0.1"), ip("10.0.1.1")));
        assert!(same_network(ip("2001:db8::1"), ip("2001:db8::2")));
        assert!(same_network(ip("::ffff:10.0.0.1"), ip("10.0.0.9")));
        assert!(!same_network(ip("2001:db8::1"), ip("10.0.0.9")));
    }
}
