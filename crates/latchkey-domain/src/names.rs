//! Names people and apps choose: parsed once at the edge into types that are always valid.

use std::fmt;
use thiserror::Error;

/// Why a name was refused.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum NameError {
    /// Nothing (or only spaces) was given.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// Longer than allowed.
    #[error("{what} is at most {max} characters")]
    TooLong {
        /// Which name.
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// Shorter than allowed.
    #[error("{what} needs at least {min} characters")]
    TooShort {
        /// Which value.
        what: &'static str,
        /// The minimum.
        min: usize,
    },
    /// A character outside what the name allows.
    #[error("{what} may only contain {allowed}")]
    BadCharacter {
        /// Which name.
        what: &'static str,
        /// What is allowed, in words.
        allowed: &'static str,
    },
}

/// An account's sign-in name: 1–64 of `a-z 0-9 . _ - @`, stored lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    /// Parses a typed username, folding ASCII case.
    pub fn parse(input: &str) -> Result<Self, NameError> {
        let s = input.trim().to_ascii_lowercase();
        if s.is_empty() {
            return Err(NameError::Empty("a username"));
        }
        if s.len() > 64 {
            return Err(NameError::TooLong { what: "a username", max: 64 });
        }
        if !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-@".contains(&b)) {
            return Err(NameError::BadCharacter {
                what: "a username",
                allowed: "letters, digits, '.', '_', '-' and '@'",
            });
        }
        Ok(Self(s))
    }

    /// The stored form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An OAuth `client_id` chosen by an admin: 1–64 of `a-z 0-9 - _ .`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    /// Parses an admin-chosen client ID.
    pub fn parse(input: &str) -> Result<Self, NameError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(NameError::Empty("a client ID"));
        }
        if s.len() > 64 {
            return Err(NameError::TooLong { what: "a client ID", max: 64 });
        }
        if !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b)) {
            return Err(NameError::BadCharacter {
                what: "a client ID",
                allowed: "lowercase letters, digits, '-', '_' and '.'",
            });
        }
        Ok(Self(s.to_string()))
    }

    /// The ID's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Free text a person sees (an app's or a device's display name): 1–100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DisplayName(String);

impl DisplayName {
    /// Longest display name, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Parses a display name, trimming surrounding space.
    pub fn parse(input: &str) -> Result<Self, NameError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(NameError::Empty("a name"));
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(NameError::TooLong { what: "a name", max: Self::MAX_CHARS });
        }
        check_visible("a name", s)?;
        Ok(Self(s.to_string()))
    }

    /// The name's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Most combining marks one character may carry: enough for any script, too few
/// for a "Zalgo" flood that spills over the text around it.
pub const MAX_COMBINING_MARKS: usize = 4;

/// Refuses what a person cannot see or that disguises text on a page that
/// approves something: control and format characters (zero-width spaces and
/// joiners, the byte-order mark, bidirectional overrides: Unicode Cc and Cf),
/// line and paragraph separators, and floods of combining marks.
pub fn check_visible(what: &'static str, s: &str) -> Result<(), NameError> {
    use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};
    let mut marks = 0;
    for c in s.chars() {
        let group = c.general_category_group();
        let hidden = c.is_control()
            || is_bidi_control(c)
            || matches!(
                c.general_category(),
                unicode_properties::GeneralCategory::Format
                    | unicode_properties::GeneralCategory::LineSeparator
                    | unicode_properties::GeneralCategory::ParagraphSeparator
            );
        if hidden {
            return Err(NameError::BadCharacter {
                what,
                allowed: "visible characters (no invisible or control characters)",
            });
        }
        marks = if group == GeneralCategoryGroup::Mark { marks + 1 } else { 0 };
        if marks > MAX_COMBINING_MARKS {
            return Err(NameError::BadCharacter { what, allowed: "at most 4 combining marks on one character" });
        }
    }
    Ok(())
}

/// Bidirectional-override characters, which can make a name on an approval page read as something else.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Rules for a new password: long enough to matter, short enough not to be a hashing DoS.
pub fn check_password(password: &str) -> Result<(), NameError> {
    if password.chars().count() < 8 {
        return Err(NameError::TooShort { what: "a password", min: 8 });
    }
    if password.len() > 1024 {
        return Err(NameError::TooLong { what: "a password", max: 1024 });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(Username::parse(" Alice ").map(|u| u.to_string()), Ok("alice".into()));
        assert!(Username::parse("").is_err());
        assert!(Username::parse("a b").is_err());
        assert!(Username::parse(&"a".repeat(65)).is_err());
        assert!(Username::parse("ops@example.com").is_ok());
    }

    #[test]
    fn client_ids() {
        assert!(ClientId::parse("latchkey-cli").is_ok());
        assert!(ClientId::parse("Bad").is_err());
        assert!(ClientId::parse("").is_err());
    }

    #[test]
    fn display_names() {
        assert_eq!(DisplayName::parse("  My Laptop ").map(|n| n.to_string()), Ok("My Laptop".into()));
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"x".repeat(10_000)).is_err());
        assert!(DisplayName::parse("a\u{7}b").is_err());
        assert!(DisplayName::parse("Büro-Rechner ☕").is_ok());
        assert!(DisplayName::parse("evil\u{202E}gnp.exe").is_err(), "bidi overrides are refused");
    }

    #[test]
    fn passwords() {
        assert!(check_password("short").is_err());
        assert!(check_password("long enough").is_ok());
        assert!(check_password(&"x".repeat(2000)).is_err());
    }

    #[test]
    fn invisible_characters_and_mark_floods_are_refused() {
        for bad in [
            "lap\u{200B}top",                       // zero-width space
            "lap\u{200D}top",                       // zero-width joiner
            "\u{FEFF}laptop",                       // byte-order mark
            "lap\u{2028}top",                       // line separator
            "lap\u{2029}top",                       // paragraph separator
            "lap\u{00AD}top",                       // soft hyphen (format)
            "lap\u{2060}top",                       // word joiner
            "e\u{301}\u{301}\u{301}\u{301}\u{301}", // five combining marks on one letter
        ] {
            assert!(DisplayName::parse(bad).is_err(), "{bad:?} was accepted");
        }
        for good in ["Büro", "São Paulo", "東京", "नमस्ते", "e\u{301}", "Ð\u{323}\u{302}", "rack 4 — left"]
        {
            assert!(DisplayName::parse(good).is_ok(), "{good:?} was refused");
        }
    }
}
