//! OpenID Connect's authorization code flow with PKCE (RFC 6749 §4.1,
//! RFC 7636, OpenID Connect Core §3.1, RFC 9700): which redirect URIs an app
//! may register, reading an authorization request, what the browser sees next
//! (sign in, consent, a code or an error), and redeeming a code.
//!
//! Two kinds of refusal exist and must never be confused (RFC 6749 §4.1.2.1):
//! while the app or its redirect URI is not established, nothing may be sent
//! to that URI, so the person sees Latchkey's own error page
//! ([`PageRefusal`]); once both are, every other problem goes back to the app
//! as `error=…` on its redirect URI ([`Refusal`]).

use crate::Timestamp;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;

/// How long an authorization code can be redeemed: long enough for a redirect
/// and one back-channel request, short enough that a leaked one is stale.
pub const CODE_LIFETIME_MS: i64 = 60_000;
/// How long a redeemed or expired code is kept, so that a replay is still
/// recognised (and what it issued revoked) after it stopped working.
pub const CODE_KEPT_MS: i64 = 3_600_000;
/// The scopes an app may ask for.
pub const SUPPORTED_SCOPES: &[&str] = &["openid", "profile", "offline_access"];
/// Longest `state` taken: apps put a nonce or a short return path there, not a document.
pub const MAX_STATE_LEN: usize = 1024;
/// Longest `nonce` taken.
pub const MAX_NONCE_LEN: usize = 512;
/// Longest registered redirect URI.
pub const MAX_REDIRECT_URI_LEN: usize = 2000;

/// Why a redirect URI cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RedirectUriError {
    /// Not an absolute URL.
    #[error("{0:?} is not an absolute URL")]
    NotAbsolute(String),
    /// Plain http to a host that is not this machine.
    #[error("{0:?} uses http: only https, or http to localhost / 127.0.0.1 / [::1] (RFC 8252 loopback), is allowed")]
    Insecure(String),
    /// A fragment: the code arrives in the query, and RFC 6749 §3.1.2 forbids one.
    #[error("{0:?} has a #fragment, which a redirect URI may not have")]
    Fragment(String),
    /// Spaces, control characters, or too long.
    #[error("a redirect URI must be at most {MAX_REDIRECT_URI_LEN} visible characters with no spaces")]
    Malformed,
}

/// Checks a redirect URI an admin registers. It is later compared exactly,
/// character for character (RFC 9700 §4.1.3), so what is stored is what was given.
///
/// Allowed: https; http only to the loopback names a native app listens on
/// (RFC 8252 §7.3); a private-use scheme with a dot, such as
/// `com.example.app:/callback` (RFC 8252 §7.1). Never a fragment.
pub fn check_redirect_uri(uri: &str) -> Result<String, RedirectUriError> {
    if uri.is_empty() || uri.len() > MAX_REDIRECT_URI_LEN || uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(RedirectUriError::Malformed);
    }
    let parsed = url::Url::parse(uri).map_err(|_| RedirectUriError::NotAbsolute(uri.into()))?;
    if parsed.fragment().is_some() || uri.contains('#') {
        return Err(RedirectUriError::Fragment(uri.into()));
    }
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(uri.to_string()),
        "http" => match parsed.host() {
            Some(url::Host::Domain("localhost")) => Ok(uri.to_string()),
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Ok(uri.to_string()),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Ok(uri.to_string()),
            _ => Err(RedirectUriError::Insecure(uri.into())),
        },
        "https" => Err(RedirectUriError::NotAbsolute(uri.into())),
        // RFC 8252 §7.1: a reverse domain name the app owns; a bare word could be anyone's.
        s if s.contains('.') => Ok(uri.to_string()),
        _ => Err(RedirectUriError::Insecure(uri.into())),
    }
}

/// An error page, not a redirect: the app or where to send the answer is not established.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PageRefusal {
    /// No `client_id`, or it was given twice.
    #[error("the sign-in link names no app (client_id is missing or repeated); go back to the app and start again")]
    NoClient,
    /// No app has that ID.
    #[error("no app is registered as {0:?}; the link you followed is wrong or the app was removed")]
    UnknownClient(String),
    /// The app is not allowed the authorization code grant.
    #[error("the app {0:?} is not set up for web sign-in (it may not use the authorization_code grant)")]
    CodeNotAllowed(String),
    /// No `redirect_uri`, or it was given twice.
    #[error("the sign-in link has no redirect_uri (or has two); the app must send exactly one")]
    NoRedirectUri,
    /// The `redirect_uri` is not one the app registered, character for character.
    #[error("the redirect_uri {0:?} is not registered for this app, so Latchkey will not send anything there")]
    UnregisteredRedirectUri(String),
}

/// The `error` codes an authorization request can end with (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Malformed or contradictory parameters.
    InvalidRequest,
    /// Not `response_type=code`.
    UnsupportedResponseType,
    /// A scope this server does not grant.
    InvalidScope,
    /// The person refused.
    AccessDenied,
    /// `prompt=none`, and nobody is signed in (or not recently enough).
    LoginRequired,
    /// `prompt=none`, and the person has not consented to this app.
    ConsentRequired,
    /// `request` objects are not supported.
    RequestNotSupported,
    /// `request_uri` is not supported.
    RequestUriNotSupported,
    /// The account may not sign in (disabled, locked).
    ServerRefused,
}

impl ErrorCode {
    /// The wire `error` value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied | ErrorCode::ServerRefused => "access_denied",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
        }
    }
}

/// A refusal sent back to the app's (registered, exactly matched) redirect URI.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}: {description}", code.as_str())]
pub struct Refusal {
    /// The `error`.
    pub code: ErrorCode,
    /// The `error_description`, for the app's developer.
    pub description: String,
}

impl Refusal {
    fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Refusal { code, description: description.into() }
    }
}

/// What an authorization request can fail with.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthorizeError {
    /// Shown on Latchkey's page.
    #[error(transparent)]
    Page(#[from] PageRefusal),
    /// Sent back to the app, with the request's `state` (if it had a usable one).
    #[error("{refusal}")]
    Redirect {
        /// Where to.
        redirect_uri: String,
        /// The app's `state`, echoed.
        state: Option<String>,
        /// What went wrong.
        refusal: Refusal,
    },
}

/// The `prompt` values (OIDC Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// Show nothing: answer at once or fail.
    pub none: bool,
    /// Ask for the password again even when signed in.
    pub login: bool,
    /// Ask for consent again even when given before.
    pub consent: bool,
}

/// Who is asking and where the answer goes, read before the app is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRef {
    /// `client_id`.
    pub client_id: String,
    /// `redirect_uri`, as given.
    pub redirect_uri: String,
}

/// What the registered app allows, as far as this flow needs to know.
#[derive(Debug, Clone, Copy)]
pub struct RegisteredApp<'a> {
    /// The app's registered redirect URIs.
    pub redirect_uris: &'a [String],
    /// Whether it may use the authorization code grant.
    pub may_use_code: bool,
    /// Whether it may use refresh tokens (so `offline_access` means something).
    pub may_refresh: bool,
}

/// A checked authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// The app.
    pub client_id: String,
    /// Where the code goes; one the app registered.
    pub redirect_uri: String,
    /// Granted scopes, each once, in the order asked.
    pub scopes: Vec<String>,
    /// Echoed back.
    pub state: Option<String>,
    /// Goes into the ID token.
    pub nonce: Option<String>,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// `prompt`.
    pub prompt: Prompt,
    /// `max_age`, in seconds.
    pub max_age: Option<i64>,
    /// A username to offer on the sign-in form.
    pub login_hint: Option<String>,
}

impl AuthorizationRequest {
    /// The scopes as one space-separated string.
    pub fn scope(&self) -> String {
        self.scopes.join(" ")
    }
}

fn once<'a>(pairs: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, ()> {
    let mut found = pairs.iter().filter(|(k, _)| k == name);
    match (found.next(), found.next()) {
        (None, _) => Ok(None),
        (Some((_, v)), None) => Ok(Some(v.as_str())),
        (Some(_), Some(_)) => Err(()),
    }
}

/// Reads `client_id` and `redirect_uri`: each exactly once (RFC 6749 §3.1).
pub fn identify(pairs: &[(String, String)]) -> Result<ClientRef, PageRefusal> {
    let client_id = once(pairs, "client_id").ok().flatten().filter(|c| !c.is_empty()).ok_or(PageRefusal::NoClient)?;
    let redirect_uri =
        once(pairs, "redirect_uri").ok().flatten().filter(|r| !r.is_empty()).ok_or(PageRefusal::NoRedirectUri)?;
    Ok(ClientRef { client_id: client_id.into(), redirect_uri: redirect_uri.into() })
}

/// Whether `s` is a PKCE S256 challenge: 43 base64url characters (a SHA-256 digest).
fn is_s256_challenge(s: &str) -> bool {
    s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks a whole authorization request against the app it names (looked up
/// from [`identify`]'s `client_id`).
pub fn check_request(
    pairs: &[(String, String)],
    app: RegisteredApp<'_>,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let client = identify(pairs)?;
    if !app.may_use_code {
        return Err(PageRefusal::CodeNotAllowed(client.client_id).into());
    }
    if !app.redirect_uris.iter().any(|r| r == &client.redirect_uri) {
        return Err(PageRefusal::UnregisteredRedirectUri(client.redirect_uri).into());
    }
    // From here on, refusals go back to the app. `state` first, so they can carry it.
    let state_param = once(pairs, "state");
    let state_ok = match state_param {
        Ok(Some(s)) => s.len() <= MAX_STATE_LEN,
        Ok(None) => true,
        Err(()) => false,
    };
    let state = state_param.ok().flatten().filter(|s| !s.is_empty() && s.len() <= MAX_STATE_LEN).map(str::to_string);
    let refuse = |refusal: Refusal| AuthorizeError::Redirect {
        redirect_uri: client.redirect_uri.clone(),
        state: state.clone(),
        refusal,
    };
    if !state_ok {
        return Err(refuse(Refusal::new(
            ErrorCode::InvalidRequest,
            format!("state must be given at most once and be at most {MAX_STATE_LEN} characters"),
        )));
    }
    read(pairs, &client, app, state.clone()).map_err(refuse)
}

fn read(
    pairs: &[(String, String)],
    client: &ClientRef,
    app: RegisteredApp<'_>,
    state: Option<String>,
) -> Result<AuthorizationRequest, Refusal> {
    let invalid = |msg: String| Refusal::new(ErrorCode::InvalidRequest, msg);
    for (k, _) in pairs {
        if pairs.iter().filter(|(k2, _)| k2 == k).count() > 1 {
            return Err(invalid(format!("the parameter {k} is given more than once")));
        }
    }
    let get = |name: &str| once(pairs, name).ok().flatten().filter(|v| !v.is_empty());
    if get("request").is_some() {
        return Err(Refusal::new(ErrorCode::RequestNotSupported, "request objects are not supported"));
    }
    if get("request_uri").is_some() {
        return Err(Refusal::new(ErrorCode::RequestUriNotSupported, "request_uri is not supported"));
    }
    match get("response_type") {
        Some("code") => {}
        Some(other) => {
            return Err(Refusal::new(
                ErrorCode::UnsupportedResponseType,
                format!("response_type {other:?} is not supported; use response_type=code"),
            ))
        }
        None => return Err(invalid("response_type is required (response_type=code)".into())),
    }
    if let Some(mode) = get("response_mode").filter(|m| *m != "query") {
        return Err(invalid(format!("response_mode {mode:?} is not supported; codes are returned in the query")));
    }
    let code_challenge = get("code_challenge")
        .ok_or_else(|| invalid("code_challenge is required: every app uses PKCE with S256 (RFC 7636)".into()))?;
    match get("code_challenge_method") {
        Some("S256") => {}
        Some(m) => return Err(invalid(format!("code_challenge_method {m:?} is not supported; use S256"))),
        None => return Err(invalid("code_challenge_method=S256 is required (plain is not accepted)".into())),
    }
    if !is_s256_challenge(code_challenge) {
        return Err(invalid("code_challenge must be the 43-character base64url SHA-256 of the verifier".into()));
    }
    let mut scopes: Vec<String> = Vec::new();
    for s in get("scope").unwrap_or("").split(' ').filter(|s| !s.is_empty()) {
        if !SUPPORTED_SCOPES.contains(&s) {
            return Err(Refusal::new(
                ErrorCode::InvalidScope,
                format!("the scope {s:?} is not granted here; ask for some of: {}", SUPPORTED_SCOPES.join(" ")),
            ));
        }
        if !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_string());
        }
    }
    if !app.may_refresh {
        // Without refresh tokens there is nothing offline to grant; asking is not an error.
        scopes.retain(|s| s != "offline_access");
    }
    let nonce = get("nonce").map(str::to_string);
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_NONCE_LEN) {
        return Err(invalid(format!("nonce must be at most {MAX_NONCE_LEN} characters")));
    }
    let mut prompt = Prompt::default();
    for p in get("prompt").unwrap_or("").split(' ').filter(|p| !p.is_empty()) {
        match p {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            // One account per browser session: there is nothing to choose between.
            "select_account" => {}
            other => return Err(invalid(format!("prompt value {other:?} is not supported"))),
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(invalid("prompt=none cannot be combined with other prompt values".into()));
    }
    let max_age = match get("max_age") {
        None => None,
        Some(m) => Some(
            m.parse::<i64>()
                .ok()
                .filter(|m| *m >= 0)
                .ok_or_else(|| invalid(format!("max_age must be a number of seconds, not {m:?}")))?,
        ),
    };
    let login_hint = get("login_hint").filter(|h| h.len() <= 256).map(str::to_string);
    Ok(AuthorizationRequest {
        client_id: client.client_id.clone(),
        redirect_uri: client.redirect_uri.clone(),
        scopes,
        state,
        nonce,
        code_challenge: code_challenge.to_string(),
        prompt,
        max_age,
        login_hint,
    })
}

/// What the browser sees next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// The sign-in form.
    SignIn,
    /// The consent page.
    Consent,
    /// A code, redirected to the app.
    IssueCode,
    /// An error, redirected to the app.
    Refuse(ErrorCode),
}

/// Decides the next step for `req`.
///
/// `signed_in_at` is when the browser's session authenticated (`None`: no
/// session); `just_signed_in` is true right after the sign-in form of this
/// very request, which satisfies `prompt=login` and `max_age` (else they
/// would ask again forever); `consented` is whether the person already
/// granted this app every scope asked for.
pub fn next_step(
    req: &AuthorizationRequest,
    signed_in_at: Option<Timestamp>,
    just_signed_in: bool,
    consented: bool,
    now: Timestamp,
) -> NextStep {
    let needs_sign_in = match signed_in_at {
        None => true,
        Some(_) if just_signed_in => false,
        Some(at) => req.prompt.login || req.max_age.is_some_and(|m| now.millis_since(at) > m.saturating_mul(1000)),
    };
    if needs_sign_in {
        return if req.prompt.none { NextStep::Refuse(ErrorCode::LoginRequired) } else { NextStep::SignIn };
    }
    if req.prompt.consent || !consented {
        return if req.prompt.none { NextStep::Refuse(ErrorCode::ConsentRequired) } else { NextStep::Consent };
    }
    NextStep::IssueCode
}

/// Whether `granted` (a stored consent's scope) covers every scope in `asked`.
pub fn consent_covers(granted: &str, asked: &[String]) -> bool {
    asked.iter().all(|a| granted.split(' ').any(|g| g == a))
}

/// The union of a stored consent's scope and newly granted ones, each once.
pub fn consent_union(granted: &str, asked: &[String]) -> String {
    let mut all: Vec<&str> = granted.split(' ').filter(|s| !s.is_empty()).collect();
    for a in asked {
        if !all.contains(&a.as_str()) {
            all.push(a);
        }
    }
    all.join(" ")
}

/// Appends query parameters to a redirect URI that may already have a query.
pub fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let mut out = String::from(redirect_uri);
    let mut sep = if redirect_uri.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        out.push(sep);
        sep = '&';
        out.push_str(k);
        out.push('=');
        out.extend(url::form_urlencoded::byte_serialize(v.as_bytes()));
    }
    out
}

/// A stored code, as far as redeeming it needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCode {
    /// The app it was issued to.
    pub client_id: String,
    /// The redirect URI it was sent to.
    pub redirect_uri: String,
    /// The PKCE challenge.
    pub code_challenge: String,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// Whether it was redeemed already.
    pub used: bool,
}

/// What a token request presents with a code.
#[derive(Debug, Clone, Copy)]
pub struct PresentedCode<'a> {
    /// The authenticated app.
    pub client_id: &'a str,
    /// `redirect_uri`.
    pub redirect_uri: Option<&'a str>,
    /// `code_verifier`.
    pub code_verifier: Option<&'a str>,
}

/// Why a code is not redeemed; every one is `invalid_grant` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CodeRefusal {
    /// Redeemed before: what it issued is revoked (RFC 6749 §4.1.2).
    #[error("this authorization code was already used; the tokens it issued are now revoked")]
    Reused,
    /// Issued to another app.
    #[error("this authorization code was issued to another app")]
    OtherClient,
    /// Too late.
    #[error("this authorization code has expired; start the sign-in again")]
    Expired,
    /// `redirect_uri` missing or not the one the code was sent to.
    #[error("redirect_uri must be the exact redirect_uri of the authorization request")]
    RedirectUriMismatch,
    /// No `code_verifier`.
    #[error("code_verifier is required (PKCE)")]
    MissingVerifier,
    /// Not 43–128 unreserved characters (RFC 7636 §4.1).
    #[error("code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")]
    MalformedVerifier,
    /// The verifier does not hash to the challenge.
    #[error("the code_verifier does not match the code_challenge")]
    WrongVerifier,
}

/// Whether `verifier` is a well-formed PKCE verifier (RFC 7636 §4.1).
pub fn is_code_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The S256 challenge of a verifier: `BASE64URL(SHA256(verifier))`.
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Decides whether `presented` redeems `code` now. A reused code is reported
/// first, whoever presents it: the code leaked, and what it issued must go.
pub fn redeem(code: &IssuedCode, presented: PresentedCode<'_>, now: Timestamp) -> Result<(), CodeRefusal> {
    if code.used {
        return Err(CodeRefusal::Reused);
    }
    if code.client_id != presented.client_id {
        return Err(CodeRefusal::OtherClient);
    }
    if now >= code.expires_at {
        return Err(CodeRefusal::Expired);
    }
    if presented.redirect_uri != Some(code.redirect_uri.as_str()) {
        return Err(CodeRefusal::RedirectUriMismatch);
    }
    let verifier = presented.code_verifier.ok_or(CodeRefusal::MissingVerifier)?;
    if !is_code_verifier(verifier) {
        return Err(CodeRefusal::MalformedVerifier);
    }
    if !bool::from(s256_challenge(verifier).as_bytes().ct_eq(code.code_challenge.as_bytes())) {
        return Err(CodeRefusal::WrongVerifier);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn pairs(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut base = vec![
            ("client_id", "web"),
            ("redirect_uri", "https://app.example/cb"),
            ("response_type", "code"),
            ("scope", "openid profile"),
            ("state", "xyz"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        for (k, v) in extra {
            base.retain(|(bk, _)| bk != k);
            if !v.is_empty() {
                base.push((k, v));
            }
        }
        base.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn app(uris: &[String]) -> RegisteredApp<'_> {
        RegisteredApp { redirect_uris: uris, may_use_code: true, may_refresh: true }
    }

    fn registered() -> Vec<String> {
        vec!["https://app.example/cb".into(), "http://127.0.0.1:8123/cb".into()]
    }

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn rfc7636_appendix_b_vector() {
        assert_eq!(s256_challenge(VERIFIER), CHALLENGE);
    }

    #[test]
    fn a_good_request_is_read() {
        let uris = registered();
        let r = check_request(&pairs(&[("nonce", "n-1"), ("max_age", "300")]), app(&uris)).unwrap();
        assert_eq!(r.scopes, vec!["openid", "profile"]);
        assert_eq!(r.state.as_deref(), Some("xyz"));
        assert_eq!(r.nonce.as_deref(), Some("n-1"));
        assert_eq!(r.max_age, Some(300));
        assert_eq!(r.scope(), "openid profile");
    }

    #[test]
    fn the_redirect_uri_is_compared_exactly_and_refused_on_the_page() {
        let uris = registered();
        for wrong in
            ["https://app.example/cb/", "https://APP.example/cb", "https://app.example/cb?x=1", "https://evil/cb"]
        {
            let e = check_request(&pairs(&[("redirect_uri", wrong)]), app(&uris)).unwrap_err();
            assert_eq!(e, AuthorizeError::Page(PageRefusal::UnregisteredRedirectUri(wrong.into())));
        }
        let e = check_request(&pairs(&[("redirect_uri", "")]), app(&uris)).unwrap_err();
        assert_eq!(e, AuthorizeError::Page(PageRefusal::NoRedirectUri));
        let mut twice = pairs(&[]);
        twice.push(("redirect_uri".into(), "https://app.example/cb".into()));
        assert_eq!(check_request(&twice, app(&uris)).unwrap_err(), AuthorizeError::Page(PageRefusal::NoRedirectUri));
        let no_code = RegisteredApp { may_use_code: false, ..app(&uris) };
        assert!(matches!(
            check_request(&pairs(&[]), no_code),
            Err(AuthorizeError::Page(PageRefusal::CodeNotAllowed(_)))
        ));
    }

    fn refusal(extra: &[(&str, &str)]) -> (ErrorCode, Option<String>) {
        let uris = registered();
        match check_request(&pairs(extra), app(&uris)) {
            Err(AuthorizeError::Redirect { refusal, state, redirect_uri }) => {
                assert_eq!(redirect_uri, "https://app.example/cb");
                (refusal.code, state)
            }
            other => panic!("expected a redirect refusal, got {other:?}"),
        }
    }

    #[test]
    fn everything_else_goes_back_to_the_app_with_its_state() {
        use ErrorCode::*;
        assert_eq!(refusal(&[("response_type", "token")]), (UnsupportedResponseType, Some("xyz".into())));
        assert_eq!(refusal(&[("response_type", "")]).0, InvalidRequest);
        assert_eq!(refusal(&[("code_challenge", "")]).0, InvalidRequest);
        assert_eq!(refusal(&[("code_challenge_method", "plain")]).0, InvalidRequest);
        assert_eq!(refusal(&[("code_challenge_method", "")]).0, InvalidRequest);
        assert_eq!(refusal(&[("code_challenge", "short")]).0, InvalidRequest);
        assert_eq!(refusal(&[("scope", "openid email")]).0, InvalidScope);
        assert_eq!(refusal(&[("prompt", "none login")]).0, InvalidRequest);
        assert_eq!(refusal(&[("prompt", "bogus")]).0, InvalidRequest);
        assert_eq!(refusal(&[("max_age", "-1")]).0, InvalidRequest);
        assert_eq!(refusal(&[("response_mode", "fragment")]).0, InvalidRequest);
        assert_eq!(refusal(&[("request", "eyJ...")]).0, RequestNotSupported);
        assert_eq!(refusal(&[("request_uri", "https://x")]).0, RequestUriNotSupported);
        let long_state = "s".repeat(MAX_STATE_LEN + 1);
        assert_eq!(refusal(&[("state", &long_state)]), (InvalidRequest, None));
        let mut twice = pairs(&[]);
        twice.push(("scope".into(), "openid".into()));
        let uris = registered();
        assert!(matches!(
            check_request(&twice, app(&uris)),
            Err(AuthorizeError::Redirect { refusal: Refusal { code: InvalidRequest, .. }, .. })
        ));
    }

    #[test]
    fn offline_access_is_dropped_for_apps_without_refresh_and_scopes_are_deduplicated() {
        let uris = registered();
        let no_refresh = RegisteredApp { may_refresh: false, ..app(&uris) };
        let r = check_request(&pairs(&[("scope", "openid offline_access openid")]), no_refresh).unwrap();
        assert_eq!(r.scopes, vec!["openid"]);
        let r = check_request(&pairs(&[("scope", "openid offline_access openid")]), app(&uris)).unwrap();
        assert_eq!(r.scopes, vec!["openid", "offline_access"]);
    }

    #[test]
    fn the_next_step_follows_session_prompt_max_age_and_consent() {
        let uris = registered();
        let req = |extra: &[(&str, &str)]| check_request(&pairs(extra), app(&uris)).unwrap();
        let now = t(1_000_000);
        let plain = req(&[]);
        assert_eq!(next_step(&plain, None, false, false, now), NextStep::SignIn);
        assert_eq!(next_step(&plain, Some(t(0)), false, false, now), NextStep::Consent);
        assert_eq!(next_step(&plain, Some(t(0)), false, true, now), NextStep::IssueCode);
        let none = req(&[("prompt", "none")]);
        assert_eq!(next_step(&none, None, false, true, now), NextStep::Refuse(ErrorCode::LoginRequired));
        assert_eq!(next_step(&none, Some(t(0)), false, false, now), NextStep::Refuse(ErrorCode::ConsentRequired));
        assert_eq!(next_step(&none, Some(t(0)), false, true, now), NextStep::IssueCode);
        let login = req(&[("prompt", "login")]);
        assert_eq!(next_step(&login, Some(now), false, true, now), NextStep::SignIn);
        // Right after this request's own sign-in form, prompt=login is satisfied: no loop.
        assert_eq!(next_step(&login, Some(now), true, true, now), NextStep::IssueCode);
        let consent = req(&[("prompt", "consent")]);
        assert_eq!(next_step(&consent, Some(t(0)), false, true, now), NextStep::Consent);
        let max_age = req(&[("max_age", "100")]);
        assert_eq!(next_step(&max_age, Some(t(900_000)), false, true, now), NextStep::IssueCode);
        assert_eq!(next_step(&max_age, Some(t(899_999)), false, true, now), NextStep::SignIn);
        let zero = req(&[("max_age", "0")]);
        assert_eq!(next_step(&zero, Some(t(999_000)), false, true, now), NextStep::SignIn);
        assert_eq!(next_step(&zero, Some(now), true, true, now), NextStep::IssueCode);
    }

    #[test]
    fn consent_covers_only_what_was_granted() {
        let asked = vec!["openid".to_string(), "profile".to_string()];
        assert!(consent_covers("profile openid offline_access", &asked));
        assert!(!consent_covers("openid", &asked));
        assert_eq!(consent_union("openid", &asked), "openid profile");
        assert_eq!(consent_union("", &asked), "openid profile");
    }

    #[test]
    fn redirects_append_to_an_existing_query_and_encode() {
        assert_eq!(
            redirect_with("https://a/cb", &[("code", "c"), ("state", "a b&c")]),
            "https://a/cb?code=c&state=a+b%26c"
        );
        assert_eq!(redirect_with("https://a/cb?x=1", &[("code", "c")]), "https://a/cb?x=1&code=c");
    }

    fn issued() -> IssuedCode {
        IssuedCode {
            client_id: "web".into(),
            redirect_uri: "https://app.example/cb".into(),
            code_challenge: CHALLENGE.into(),
            expires_at: t(60_000),
            used: false,
        }
    }

    fn presented(verifier: Option<&str>) -> PresentedCode<'_> {
        PresentedCode { client_id: "web", redirect_uri: Some("https://app.example/cb"), code_verifier: verifier }
    }

    #[test]
    fn a_code_redeems_once_with_its_verifier() {
        assert_eq!(redeem(&issued(), presented(Some(VERIFIER)), t(1)), Ok(()));
        let used = IssuedCode { used: true, ..issued() };
        assert_eq!(redeem(&used, presented(Some(VERIFIER)), t(1)), Err(CodeRefusal::Reused));
        let other = PresentedCode { client_id: "other", ..presented(Some(VERIFIER)) };
        assert_eq!(redeem(&used, other, t(1)), Err(CodeRefusal::Reused));
        assert_eq!(redeem(&issued(), other, t(1)), Err(CodeRefusal::OtherClient));
        assert_eq!(redeem(&issued(), presented(Some(VERIFIER)), t(60_000)), Err(CodeRefusal::Expired));
        let wrong_uri = PresentedCode { redirect_uri: Some("https://app.example/cb2"), ..presented(Some(VERIFIER)) };
        assert_eq!(redeem(&issued(), wrong_uri, t(1)), Err(CodeRefusal::RedirectUriMismatch));
        let no_uri = PresentedCode { redirect_uri: None, ..presented(Some(VERIFIER)) };
        assert_eq!(redeem(&issued(), no_uri, t(1)), Err(CodeRefusal::RedirectUriMismatch));
        assert_eq!(redeem(&issued(), presented(None), t(1)), Err(CodeRefusal::MissingVerifier));
        assert_eq!(redeem(&issued(), presented(Some("short")), t(1)), Err(CodeRefusal::MalformedVerifier));
        let other_verifier = "x".repeat(43);
        assert_eq!(redeem(&issued(), presented(Some(&other_verifier)), t(1)), Err(CodeRefusal::WrongVerifier));
    }

    #[test]
    fn registered_redirect_uris() {
        for ok in [
            "https://app.example/cb",
            "https://app.example:8443/auth/cb?tenant=1",
            "http://localhost:8080/cb",
            "http://127.0.0.1/cb",
            "http://[::1]:9000/cb",
            "com.example.app:/oauth2redirect",
        ] {
            assert_eq!(check_redirect_uri(ok).as_deref(), Ok(ok), "{ok}");
        }
        for bad in [
            "http://app.example/cb",
            "https://app.example/cb#x",
            "/cb",
            "javascript:alert(1)",
            "myapp:/cb",
            "https://app.example/c b",
            "",
            "http://127.0.0.1.evil.example/cb",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }
}
