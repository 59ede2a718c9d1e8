//! Form bodies (`application/x-www-form-urlencoded`) and query strings, as the
//! authorization, logout and device endpoints read them.
//!
//! The input is a raw body. Checks: parsing never panics; an authorization
//! request sends the browser only to a registered redirect URI; a logout only
//! to a registered post-logout URI; each device field (name, location, slug,
//! platform, version, user code, scope) is accepted only in its valid form.
#![no_main]

use latchkey_domain::authorization::{self, RegisteredApp};
use latchkey_domain::device::{parse_tag, Location};
use latchkey_domain::logout::{self, Hint};
use latchkey_domain::names::DisplayName;
use latchkey_domain::scope::Scope;
use latchkey_domain::slug::Slug;
use latchkey_domain::user_code::UserCode;
use latchkey_fuzz::{check_authorize_outcome, check_logout_outcome, is_hidden};
use latchkey_proto::form;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // What the server's Form extractor does: repeated fields are refused there.
    let _ = serde_urlencoded::from_bytes::<std::collections::HashMap<String, String>>(data);
    let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(data) else { return };

    let registered: Vec<String> = ["https://app.example/cb", "http://127.0.0.1:8400/cb", "com.example.app:/cb"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let app = RegisteredApp { redirect_uris: &registered, may_use_code: true, may_refresh: false };
    let _ = authorization::identify(&pairs);
    check_authorize_outcome(&authorization::check_request(&pairs, app), &registered);

    if let Ok(req) = logout::read(&pairs) {
        for hint in [Hint::Absent, Hint::Valid { sub: "u1".into(), aud: "fuzz".into() }] {
            let plan = logout::plan(&req, &hint, Some(&registered), Some("u1"));
            check_logout_outcome(&plan, req.post_logout_redirect_uri.as_deref(), &registered);
        }
    }

    for (k, v) in &pairs {
        match k.as_str() {
            form::DEVICE_NAME => {
                if let Ok(n) = DisplayName::parse(v) {
                    assert!(!n.as_str().chars().any(is_hidden));
                }
            }
            form::DEVICE_LOCATION => {
                if let Ok(Location::Named(n)) = Location::parse(v) {
                    assert!(!n.as_str().chars().any(is_hidden));
                }
            }
            form::DEVICE_SLUG => {
                if let Ok(s) = Slug::parse(v) {
                    assert_eq!(s.as_str(), v);
                }
            }
            form::DEVICE_PLATFORM | form::CLIENT_VERSION => {
                if let Ok(t) = parse_tag("a tag", v) {
                    assert!(!t.chars().any(is_hidden));
                }
            }
            "user_code" => {
                if let Ok(c) = UserCode::parse(v) {
                    assert_eq!(UserCode::parse(&c.to_string()).as_ref(), Ok(&c));
                }
            }
            form::SCOPE => {
                if let Ok(s) = Scope::parse(v) {
                    assert_eq!(Scope::parse(&s.to_string()).as_ref(), Ok(&s), "a scope round-trips");
                }
            }
            _ => {}
        }
    }
});
