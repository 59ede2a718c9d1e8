//! Helpers shared by the fuzz targets in `fuzz_targets/`.
//!
//! Inputs are text, split into fields at newlines, so the seed corpora under
//! `corpus/` are readable and written by hand.

/// The server's JWS checks, compiled from the server's own source file (it
/// depends on nothing else of the server), so the targets test the real code
/// without building the server's whole dependency tree.
#[path = "../../crates/latchkey-server/src/jws.rs"]
pub mod jws;

/// The input as text, if it is UTF-8: these parsers take `&str`, which the layers in front of them ensure.
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// The input's first `n` newline-separated fields, the last one taking the rest; missing fields are empty.
pub fn fields(s: &str, n: usize) -> Vec<&str> {
    let mut out: Vec<&str> = s.splitn(n, '\n').collect();
    out.resize(n, "");
    out
}

/// Whether `c` is one of the characters a name shown to people must never hold:
/// control (Cc), format (Cf), line or paragraph separators (Zl, Zp).
pub fn is_hidden(c: char) -> bool {
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};
    c.is_control() || matches!(c.general_category(), G::Format | G::LineSeparator | G::ParagraphSeparator)
}

/// Scheme, host and port of `uri` as a browser parses it (WHATWG URL), if it can.
/// Unlike `url::Origin`, two URIs of one private-use scheme compare equal.
pub fn browser_origin(uri: &str) -> Option<(String, Option<String>, Option<u16>)> {
    let u = url::Url::parse(uri).ok()?;
    Some((u.scheme().to_string(), u.host_str().map(str::to_string), u.port_or_known_default()))
}

/// Checks where an authorization request may send the browser: only to a
/// redirect URI the app registered, character for character.
pub fn check_authorize_outcome(
    result: &Result<
        latchkey_domain::authorization::AuthorizationRequest,
        latchkey_domain::authorization::AuthorizeError,
    >,
    registered: &[String],
) {
    use latchkey_domain::authorization::{AuthorizeError, MAX_STATE_LEN, SUPPORTED_SCOPES};
    match result {
        Ok(req) => {
            assert!(registered.contains(&req.redirect_uri), "code sent to unregistered {:?}", req.redirect_uri);
            assert_eq!(req.code_challenge.len(), 43);
            assert!(req.state.as_ref().is_none_or(|s| !s.is_empty() && s.len() <= MAX_STATE_LEN));
            for (i, s) in req.scopes.iter().enumerate() {
                assert!(SUPPORTED_SCOPES.contains(&s.as_str()) && !req.scopes[..i].contains(s), "{:?}", req.scopes);
            }
            assert!(!(req.prompt.none && (req.prompt.login || req.prompt.consent)));
            assert!(req.max_age.is_none_or(|m| m >= 0));
        }
        Err(AuthorizeError::Redirect { redirect_uri, state, .. }) => {
            assert!(registered.contains(redirect_uri), "error sent to unregistered {redirect_uri:?}");
            assert!(state.as_ref().is_none_or(|s| !s.is_empty() && s.len() <= MAX_STATE_LEN));
        }
        Err(AuthorizeError::Page(_)) => {}
    }
}

/// Checks a logout plan: the person is sent back only to a registered
/// post-logout URI (with `state` added to its query, which keeps its origin).
pub fn check_logout_outcome(
    result: &Result<latchkey_domain::logout::LogoutPlan, latchkey_domain::logout::LogoutRefusal>,
    asked: Option<&str>,
    registered: &[String],
) {
    let Ok(plan) = result else { return };
    let Some(to) = &plan.return_to else { return };
    let asked = asked.unwrap_or_default();
    assert!(registered.iter().any(|r| r == asked), "sent to unregistered {asked:?}");
    if to != asked {
        assert_eq!(browser_origin(to), browser_origin(asked), "{asked:?} became {to:?}");
    }
}

/// `s` with the character at `at` (modulo its length) replaced by another
/// base64url character, or `None` for an empty `s`: a forger's one-character change.
pub fn tampered(s: &str, at: usize) -> Option<String> {
    if s.is_empty() {
        return None;
    }
    let i = at % s.len();
    if !s.is_char_boundary(i) {
        return None;
    }
    let old = s[i..].chars().next()?;
    let new = if old == 'A' { 'B' } else { 'A' };
    Some(format!("{}{}{}", &s[..i], new, &s[i + old.len_utf8()..]))
}
