//! Session cookies and CSRF tokens (who a request is: see `credential.rs`).
//!
//! CSRF: a cookie-authenticated state change must carry a token derived from
//! the session secret (as a form field or `X-CSRF-Token`), which another site
//! cannot read. Bearer requests carry no ambient credentials and need none.

use crate::state::AppState;
use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "latchkey_session";
/// Name of the pre-sign-in CSRF cookie (double submit on the sign-in form).
pub const SIGNIN_CSRF_COOKIE: &str = "latchkey_signin_csrf";

/// The CSRF token bound to a session token.
pub fn csrf_for(session_token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"latchkey-csrf-v1:");
    h.update(session_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&h.finalize()[..24])
}

/// A cookie's name as sent: with the `__Host-` prefix when the server is on
/// https, so no sibling subdomain can plant one (the browser only accepts such a
/// cookie from this host, Secure, with Path=/ and no Domain).
pub fn cookie_name(state: &AppState, base: &str) -> String {
    if state.config.secure_cookies() {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

/// Reads one of our cookies from the request (by its name as sent, see [`cookie_name`]).
pub fn cookie<'a>(state: &AppState, headers: &'a HeaderMap, base: &str) -> Option<&'a str> {
    let name = cookie_name(state, base);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name.as_str())
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Secure on https.
pub fn set_cookie(state: &AppState, base: &str, value: &str, max_age_secs: i64) -> String {
    let secure = if state.config.secure_cookies() { "; Secure" } else { "" };
    let name = cookie_name(state, base);
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}")
}
