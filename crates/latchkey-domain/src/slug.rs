//! Device slugs: a short, URL- and shell-safe handle derived once from the
//! display name at creation, then frozen (renaming a device never changes it).
//!
//! Rules: lowercase ASCII `[a-z0-9-]`; other letters transliterated
//! (`Büro` → `buro`) or dropped; runs of anything else become one dash; no
//! leading or trailing dash; at most 63 characters (a DNS label). Within one
//! owner a collision gets a numeric suffix (`laptop`, `laptop-2`, …); a name
//! that leaves nothing gets `device-<short id>`.

use std::collections::HashSet;
use std::fmt;
use thiserror::Error;

/// Longest slug, in characters.
pub const MAX_LEN: usize = 63;

/// A valid slug.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);

/// Why an explicit slug was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SlugError {
    /// Empty.
    #[error("a slug must not be empty")]
    Empty,
    /// Over 63 characters.
    #[error("a slug is at most {MAX_LEN} characters")]
    TooLong,
    /// Anything outside `[a-z0-9-]`, or a dash at either end.
    #[error("a slug uses only a-z, 0-9 and '-', and does not start or end with '-'")]
    Invalid,
}

impl Slug {
    /// Validates an explicit slug (`--slug`); does not repair it.
    pub fn parse(s: &str) -> Result<Self, SlugError> {
        if s.is_empty() {
            return Err(SlugError::Empty);
        }
        if s.len() > MAX_LEN {
            return Err(SlugError::TooLong);
        }
        let ok = s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
            && !s.contains("--");
        if !ok {
            return Err(SlugError::Invalid);
        }
        Ok(Self(s.to_string()))
    }

    /// The slug derived from a display name, or `None` if nothing usable is left.
    pub fn derive(name: &str) -> Option<Self> {
        let ascii = deunicode::deunicode(name).to_ascii_lowercase();
        let mut out = String::with_capacity(ascii.len().min(MAX_LEN));
        let mut pending_dash = false;
        for c in ascii.chars() {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                if pending_dash && !out.is_empty() {
                    out.push('-');
                }
                pending_dash = false;
                out.push(c);
            } else {
                pending_dash = true;
            }
            if out.len() >= MAX_LEN {
                break;
            }
        }
        out.truncate(MAX_LEN);
        let trimmed = out.trim_end_matches('-');
        (!trimmed.is_empty()).then(|| Self(trimmed.to_string()))
    }

    /// The slug for a new device: derived from `name`, or `device-<short id>`,
    /// made unique among `taken` with a numeric suffix.
    pub fn for_new_device(name: &str, device_id: &str, taken: &HashSet<String>) -> Self {
        Self::base_for_new_device(name, device_id).unique_among(taken)
    }

    /// The slug a new device would get if no other device had it: derived
    /// from `name`, or `device-<short id>`.
    pub fn base_for_new_device(name: &str, device_id: &str) -> Self {
        Self::derive(name).unwrap_or_else(|| {
            let short: String = device_id.chars().filter(char::is_ascii_alphanumeric).rev().take(8).collect();
            Self(format!("device-{}", short.to_ascii_lowercase()))
        })
    }

    /// The slugs tried for a new device, in order: this one, then `slug-2`,
    /// `slug-3`, …, each shortened to stay within 63 characters.
    pub fn candidates(&self) -> impl Iterator<Item = Slug> + '_ {
        std::iter::once(self.clone()).chain((2u64..).map(|n| {
            let suffix = format!("-{n}");
            let keep = MAX_LEN - suffix.len();
            let stem = self.0[..self.0.len().min(keep)].trim_end_matches('-');
            Self(format!("{stem}{suffix}"))
        }))
    }

    /// The first of [`Slug::candidates`] not in `taken`.
    pub fn unique_among(self, taken: &HashSet<String>) -> Self {
        let free = self.candidates().find(|c| !taken.contains(&c.0));
        free.unwrap_or(self)
    }

    /// The slug's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> Option<String> {
        Slug::derive(s).map(|s| s.to_string())
    }

    #[test]
    fn derives_from_names() {
        assert_eq!(d("My Laptop"), Some("my-laptop".into()));
        assert_eq!(d("  --Build Box #3!! "), Some("build-box-3".into()));
        assert_eq!(d("Büro-Rechner"), Some("buro-rechner".into()));
        assert_eq!(d("Ørjan's Mac"), Some("orjan-s-mac".into()));
        assert!(d("☕ ☕").is_none_or(|s| Slug::parse(&s).is_ok()), "symbols are transliterated or dropped");
        assert_eq!(d("!!!"), None);
        assert_eq!(d(""), None);
        assert_eq!(d(&"a".repeat(100)).map(|s| s.len()), Some(63));
    }

    #[test]
    fn collisions_get_numeric_suffixes() {
        let mut taken = HashSet::new();
        for want in ["laptop", "laptop-2", "laptop-3"] {
            let s = Slug::for_new_device("Laptop", "id", &taken);
            assert_eq!(s.as_str(), want);
            taken.insert(s.to_string());
        }
    }

    #[test]
    fn empty_names_get_a_generated_slug() {
        let s = Slug::for_new_device("!!!", "01a210b1-111f-77b1-be78-af8548daca9c", &HashSet::new());
        assert!(s.as_str().starts_with("device-"), "{s}");
        assert!(Slug::parse(s.as_str()).is_ok());
    }

    #[test]
    fn explicit_slugs_are_validated_not_repaired() {
        assert!(Slug::parse("ci-runner-7").is_ok());
        assert_eq!(Slug::parse(""), Err(SlugError::Empty));
        assert_eq!(Slug::parse("Laptop"), Err(SlugError::Invalid));
        assert_eq!(Slug::parse("-x"), Err(SlugError::Invalid));
        assert_eq!(Slug::parse("x-"), Err(SlugError::Invalid));
        assert_eq!(Slug::parse("a--b"), Err(SlugError::Invalid));
        assert_eq!(Slug::parse(&"a".repeat(64)), Err(SlugError::TooLong));
    }

    proptest! {
        #[test]
        fn derived_slugs_always_valid(name in "\\PC{0,200}") {
            if let Some(s) = Slug::derive(&name) {
                prop_assert_eq!(Slug::parse(s.as_str()), Ok(s.clone()));
            }
        }

        #[test]
        fn unique_slugs_are_valid_and_free(name in "\\PC{0,80}", n in 0usize..30) {
            let mut taken = HashSet::new();
            for _ in 0..n {
                let s = Slug::for_new_device(&name, "0123456789abcdef", &taken);
                prop_assert!(Slug::parse(s.as_str()).is_ok(), "{}", s);
                prop_assert!(!taken.contains(s.as_str()));
                taken.insert(s.to_string());
            }
        }

        #[test]
        fn long_names_with_suffixes_stay_within_63(len in 60usize..80, n in 1usize..15) {
            let name = "x".repeat(len);
            let mut taken = HashSet::new();
            for _ in 0..n {
                let s = Slug::for_new_device(&name, "id", &taken);
                prop_assert!(s.as_str().len() <= MAX_LEN);
                taken.insert(s.to_string());
            }
        }
    }
}
