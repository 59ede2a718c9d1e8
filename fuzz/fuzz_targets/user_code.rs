//! User codes (RFC 8628) as a person types them on the approval page.
//!
//! Checks: a code that parses is 8 letters of the RFC's alphabet, is exactly
//! the typed letters upper-cased with dashes and spaces dropped, and parses
//! back to itself from both its shown and its canonical form.
#![no_main]

use latchkey_domain::user_code::{UserCode, ALPHABET, LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(typed) = latchkey_fuzz::text(data) else { return };
    let Ok(code) = UserCode::parse(typed) else { return };
    let canonical = code.canonical();
    assert_eq!(canonical.len(), LEN);
    assert!(canonical.bytes().all(|b| ALPHABET.contains(&b)), "{canonical:?}");
    let letters: String =
        typed.chars().filter(|c| *c != '-' && !c.is_whitespace()).map(|c| c.to_ascii_uppercase()).collect();
    assert_eq!(letters, canonical, "the code is the letters typed, nothing else");
    let shown = code.to_string();
    assert_eq!(shown, format!("{}-{}", &canonical[..4], &canonical[4..]));
    assert_eq!(UserCode::parse(&shown).as_ref(), Ok(&code));
    assert_eq!(UserCode::parse(&canonical).as_ref(), Ok(&code));
});
