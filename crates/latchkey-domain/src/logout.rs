//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): reading the
//! request an app sends to `end_session_endpoint`, and deciding whether to
//! ask the person, whom to sign out, and where they may be sent back to.
//!
//! As with authorization, nothing is ever sent to a URI the app did not
//! register, character for character: every problem before that is known is
//! shown on Latchkey's own page.

use thiserror::Error;

/// The parameters of a logout request, each given at most once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogoutRequest {
    /// An ID token this server issued to the app, naming whom the app signed in.
    pub id_token_hint: Option<String>,
    /// The app asking.
    pub client_id: Option<String>,
    /// Where to send the person afterwards.
    pub post_logout_redirect_uri: Option<String>,
    /// Handed back to the app with the redirect.
    pub state: Option<String>,
}

/// What the server found the `id_token_hint` to say, once its signature and issuer are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// No hint was given.
    Absent,
    /// A hint was given that this server did not issue (or that was tampered with).
    Invalid,
    /// A valid ID token (expired ones count: the app may log out long after sign-in).
    Valid {
        /// The person it names.
        sub: String,
        /// The app it was issued to.
        aud: String,
    },
}

/// Why a logout request is answered with Latchkey's own error page.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LogoutRefusal {
    /// A parameter appeared twice.
    #[error("the sign-out link has {0} more than once")]
    Repeated(String),
    /// The hint is not an ID token from this server.
    #[error("the sign-out link carries an id_token_hint that this server did not issue")]
    InvalidHint,
    /// `client_id` names another app than the hint's audience.
    #[error("the sign-out link names the app {client_id:?} but carries an ID token of {audience:?}")]
    ClientMismatch {
        /// The `client_id` given.
        client_id: String,
        /// The hint's `aud`.
        audience: String,
    },
    /// A redirect URI without any way of knowing the app.
    #[error("the sign-out link asks to go back to an app but names none (send client_id or id_token_hint)")]
    NoClient,
    /// The app named does not exist.
    #[error("no app is registered as {0:?}")]
    UnknownClient(String),
    /// The URI is not one the app registered for after logout.
    #[error("{0:?} is not a post-logout redirect URI registered for this app, so Latchkey will not send you there")]
    UnregisteredUri(String),
}

/// What to do with a logout request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutPlan {
    /// The app, when one is established.
    pub client_id: Option<String>,
    /// Where to send the person afterwards (the registered URI with `state`), if anywhere.
    pub return_to: Option<String>,
    /// Whether to ask before signing out: the browser is signed in, and nothing
    /// shows that the app signed in this very person (a request anyone could
    /// embed must not sign people out unasked).
    pub confirm: bool,
}

/// Reads the request's parameters, refusing any given twice.
pub fn read(pairs: &[(String, String)]) -> Result<LogoutRequest, LogoutRefusal> {
    let mut r = LogoutRequest::default();
    for (k, v) in pairs {
        let slot = match k.as_str() {
            "id_token_hint" => &mut r.id_token_hint,
            "client_id" => &mut r.client_id,
            "post_logout_redirect_uri" => &mut r.post_logout_redirect_uri,
            "state" => &mut r.state,
            _ => continue,
        };
        if slot.is_some() {
            return Err(LogoutRefusal::Repeated(k.clone()));
        }
        *slot = Some(v.clone()).filter(|v| !v.is_empty());
    }
    Ok(r)
}

/// Which app the request is from: `client_id`, or the hint's audience; both must agree.
pub fn client_of(r: &LogoutRequest, hint: &Hint) -> Result<Option<String>, LogoutRefusal> {
    match (hint, &r.client_id) {
        (Hint::Invalid, _) => Err(LogoutRefusal::InvalidHint),
        (Hint::Valid { aud, .. }, Some(c)) if aud != c => {
            Err(LogoutRefusal::ClientMismatch { client_id: c.clone(), audience: aud.clone() })
        }
        (Hint::Valid { aud, .. }, _) => Ok(Some(aud.clone())),
        (Hint::Absent, c) => Ok(c.clone()),
    }
}

/// Decides the plan. `registered` is the app's post-logout URIs (`None`: no
/// such app); `signed_in` is the browser's person, if any.
pub fn plan(
    r: &LogoutRequest,
    hint: &Hint,
    registered: Option<&[String]>,
    signed_in: Option<&str>,
) -> Result<LogoutPlan, LogoutRefusal> {
    let client_id = client_of(r, hint)?;
    if let Some(c) = &client_id {
        if registered.is_none() {
            return Err(LogoutRefusal::UnknownClient(c.clone()));
        }
    }
    let return_to = match (&r.post_logout_redirect_uri, &client_id) {
        (None, _) => None,
        (Some(_), None) => return Err(LogoutRefusal::NoClient),
        (Some(uri), Some(_)) => {
            if !registered.unwrap_or_default().iter().any(|u| u == uri) {
                return Err(LogoutRefusal::UnregisteredUri(uri.clone()));
            }
            Some(with_state(uri, r.state.as_deref()))
        }
    };
    let vouched = matches!((hint, signed_in), (Hint::Valid { sub, .. }, Some(me)) if sub == me);
    Ok(LogoutPlan { client_id, return_to, confirm: signed_in.is_some() && !vouched })
}

/// `uri` with `state` added to its query (OIDC RP-Initiated Logout §3).
fn with_state(uri: &str, state: Option<&str>) -> String {
    match (state, url::Url::parse(uri)) {
        (Some(s), Ok(mut u)) => {
            u.query_pairs_mut().append_pair("state", s);
            u.to_string()
        }
        _ => uri.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn valid(sub: &str, aud: &str) -> Hint {
        Hint::Valid { sub: sub.into(), aud: aud.into() }
    }

    const URIS: &[&str] = &["https://app.example/bye"];

    fn registered() -> Vec<String> {
        URIS.iter().map(|u| u.to_string()).collect()
    }

    #[test]
    fn a_repeated_parameter_is_refused() {
        let r = read(&pairs(&[("state", "a"), ("state", "b")]));
        assert_eq!(r, Err(LogoutRefusal::Repeated("state".into())));
    }

    #[test]
    fn the_app_vouching_for_the_signed_in_person_signs_out_without_asking() {
        let r = read(&pairs(&[("post_logout_redirect_uri", URIS[0]), ("state", "s 1")])).unwrap();
        let p = plan(&r, &valid("u1", "app"), Some(&registered()), Some("u1")).unwrap();
        assert_eq!(p.client_id.as_deref(), Some("app"));
        assert_eq!(p.return_to.as_deref(), Some("https://app.example/bye?state=s+1"));
        assert!(!p.confirm);
    }

    #[test]
    fn without_a_matching_hint_a_signed_in_person_is_asked() {
        let r = read(&pairs(&[("client_id", "app")])).unwrap();
        assert!(plan(&r, &Hint::Absent, Some(&registered()), Some("u1")).unwrap().confirm);
        let r = LogoutRequest::default();
        assert!(plan(&r, &valid("someone-else", "app"), Some(&registered()), Some("u1")).unwrap().confirm);
        // Nobody signed in: nothing to end, nothing to ask.
        assert!(!plan(&r, &Hint::Absent, None, None).unwrap().confirm);
    }

    #[test]
    fn nothing_is_sent_to_an_unregistered_or_unattributed_uri() {
        let r =
            read(&pairs(&[("client_id", "app"), ("post_logout_redirect_uri", "https://app.example/bye/")])).unwrap();
        assert_eq!(
            plan(&r, &Hint::Absent, Some(&registered()), None),
            Err(LogoutRefusal::UnregisteredUri("https://app.example/bye/".into()))
        );
        let r = read(&pairs(&[("post_logout_redirect_uri", URIS[0])])).unwrap();
        assert_eq!(plan(&r, &Hint::Absent, None, None), Err(LogoutRefusal::NoClient));
        let r = read(&pairs(&[("client_id", "gone"), ("post_logout_redirect_uri", URIS[0])])).unwrap();
        assert_eq!(plan(&r, &Hint::Absent, None, None), Err(LogoutRefusal::UnknownClient("gone".into())));
    }

    #[test]
    fn a_forged_hint_or_a_mismatched_client_is_refused() {
        let r = LogoutRequest::default();
        assert_eq!(plan(&r, &Hint::Invalid, None, Some("u1")), Err(LogoutRefusal::InvalidHint));
        let r = read(&pairs(&[("client_id", "other")])).unwrap();
        assert!(matches!(
            plan(&r, &valid("u1", "app"), Some(&registered()), Some("u1")),
            Err(LogoutRefusal::ClientMismatch { .. })
        ));
    }
}
