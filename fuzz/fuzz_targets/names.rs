//! Names, slugs, locations and short tags a person or app chooses.
//!
//! The input is one field per line: a username, a client ID, a display name,
//! a location, a platform tag, an explicit slug, and a name to derive a slug
//! from. Checks: whatever is accepted re-parses to itself, keeps to its
//! character rule and length, and shows no hidden characters (Cc, Cf, Zl, Zp,
//! bidirectional controls); every derived slug is valid by the slug rule.
#![no_main]

use latchkey_domain::device::{parse_tag, Location};
use latchkey_domain::names::{is_bidi_control, ClientId, DisplayName, Username};
use latchkey_domain::slug::{Slug, MAX_LEN};
use latchkey_fuzz::{fields, is_hidden, text};
use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;

fn visible(s: &str) {
    assert!(!s.chars().any(|c| is_hidden(c) || is_bidi_control(c)), "hidden character accepted in {s:?}");
}

fn valid_slug(s: &str) {
    assert!(!s.is_empty() && s.len() <= MAX_LEN, "{s:?}");
    assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{s:?}");
    assert!(!s.starts_with('-') && !s.ends_with('-') && !s.contains("--"), "{s:?}");
    assert_eq!(Slug::parse(s).map(|p| p.to_string()).as_deref(), Ok(s));
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = text(data) else { return };
    let f = fields(input, 7);

    if let Ok(u) = Username::parse(f[0]) {
        let s = u.as_str();
        assert!((1..=64).contains(&s.len()));
        assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-@".contains(&b)), "{s:?}");
        assert_eq!(Username::parse(s).as_ref(), Ok(&u));
        assert_eq!(s, f[0].trim().to_ascii_lowercase());
    }
    if let Ok(c) = ClientId::parse(f[1]) {
        let s = c.as_str();
        assert!((1..=64).contains(&s.len()));
        assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b)), "{s:?}");
        assert_eq!(ClientId::parse(s).as_ref(), Ok(&c));
    }
    if let Ok(n) = DisplayName::parse(f[2]) {
        let s = n.as_str();
        assert!(!s.is_empty() && s.chars().count() <= DisplayName::MAX_CHARS);
        assert_eq!(s, s.trim());
        visible(s);
        assert_eq!(DisplayName::parse(s).as_ref(), Ok(&n), "a name round-trips");
    }
    match Location::parse(f[3]) {
        Ok(Location::Named(n)) => {
            visible(n.as_str());
            assert!(!n.as_str().eq_ignore_ascii_case("later"));
            let stored = Location::from_stored(Some(n.as_str().to_string()));
            assert_eq!(stored, Location::Named(n), "a stored location reads back");
        }
        Ok(Location::Deferred) => assert!(f[3].trim().eq_ignore_ascii_case("later")),
        Err(_) => {}
    }
    if let Ok(t) = parse_tag("a tag", f[4]) {
        assert!(t.chars().count() <= 64);
        visible(&t);
        assert_eq!(parse_tag("a tag", &t).as_ref(), Ok(&t));
    }
    if let Ok(s) = Slug::parse(f[5]) {
        valid_slug(s.as_str());
        assert_eq!(s.as_str(), f[5]);
    }
    if let Some(s) = Slug::derive(f[6]) {
        valid_slug(s.as_str());
    }
    let mut taken = HashSet::new();
    for _ in 0..3 {
        let s = Slug::for_new_device(f[6], "0190f2a4-7b1c-7d3e-8f00-0123456789ab", &taken);
        valid_slug(s.as_str());
        assert!(taken.insert(s.to_string()), "{s} was taken");
    }
});
