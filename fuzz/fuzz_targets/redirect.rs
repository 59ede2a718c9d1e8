//! Redirect URIs an admin registers, and where web sign-in and RP-initiated
//! logout send the browser.
//!
//! The input is one field per line: an app URL, two redirect URIs to
//! register, a URI a request asks for, and a `state`. Checks: a redirect URI
//! accepted is stored exactly as given and is https, loopback http or a
//! private-use scheme, without a fragment; codes, errors and logouts go only
//! to a URI registered character for character.
#![no_main]

use latchkey_domain::app_settings::{self, AppSettingsInput};
use latchkey_domain::authorization::{self, check_redirect_uri, RegisteredApp};
use latchkey_domain::logout::{self, Hint};
use latchkey_domain::pairing::origin;
use latchkey_fuzz::{browser_origin, check_authorize_outcome, check_logout_outcome, fields, text};
use libfuzzer_sys::fuzz_target;

fn check_registered(uri: &str) {
    let parsed = url::Url::parse(uri).expect("an accepted redirect URI parses");
    assert!(!uri.contains('#') && parsed.fragment().is_none(), "{uri:?}");
    let ok = match (parsed.scheme(), parsed.host()) {
        ("https", Some(_)) => true,
        ("http", Some(url::Host::Domain(d))) => d == "localhost",
        ("http", Some(url::Host::Ipv4(ip))) => ip.is_loopback(),
        ("http", Some(url::Host::Ipv6(ip))) => ip.is_loopback(),
        (s, _) => s.contains('.') && s != "https" && s != "http",
    };
    assert!(ok, "{uri:?} may not be a redirect URI");
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = text(data) else { return };
    let f = fields(input, 5);
    let (app_url, asked, state) = (f[0], f[3], f[4]);

    if let Ok(u) = check_redirect_uri(asked) {
        assert_eq!(u, asked, "stored exactly as given");
        check_registered(&u);
    }

    let settings = app_settings::check(&AppSettingsInput {
        display_name: "Fuzz",
        app_url,
        redirect_uris: vec![f[1], f[2]],
        post_logout_redirect_uris: vec![f[2], f[1]],
        ..Default::default()
    });
    let Ok(app) = settings else { return };
    for u in app.redirect_uris.iter().chain(&app.post_logout_redirect_uris) {
        assert_eq!(check_redirect_uri(u).as_ref(), Ok(u));
        assert!(u == f[1].trim() || u == f[2].trim());
    }
    if let Some(a) = &app.app_url {
        assert!(origin(a).is_some());
    }

    let pairs: Vec<(String, String)> = [
        ("client_id", "fuzz"),
        ("redirect_uri", asked),
        ("state", state),
        ("response_type", "code"),
        ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let registered = RegisteredApp { redirect_uris: &app.redirect_uris, may_use_code: true, may_refresh: true };
    check_authorize_outcome(&authorization::check_request(&pairs, registered), &app.redirect_uris);

    let pairs: Vec<(String, String)> = [("client_id", "fuzz"), ("post_logout_redirect_uri", asked), ("state", state)]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if let Ok(req) = logout::read(&pairs) {
        let plan = logout::plan(&req, &Hint::Absent, Some(&app.post_logout_redirect_uris), Some("u1"));
        check_logout_outcome(&plan, req.post_logout_redirect_uri.as_deref(), &app.post_logout_redirect_uris);
    }

    for u in &app.redirect_uris {
        let to = authorization::redirect_with(u, &[("code", "c"), ("state", state)]);
        assert!(to.starts_with(u.as_str()));
        assert_eq!(browser_origin(&to), browser_origin(u), "{u:?} became {to:?}");
    }
});
