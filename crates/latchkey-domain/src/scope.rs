//! OAuth scopes: a validated, de-duplicated, ordered set (RFC 6749 §3.3).

use std::collections::BTreeSet;
use std::fmt;
use thiserror::Error;

/// A set of scope tokens as granted to an app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope(BTreeSet<String>);

/// Why a scope string was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ScopeError {
    /// A token contains a character outside RFC 6749's `scope-token` grammar.
    #[error("scope token {0:?} has a character OAuth does not allow")]
    BadToken(String),
    /// Too many tokens or too long a string.
    #[error("scope is too long")]
    TooLong,
}

/// Longest scope string accepted, in bytes.
const MAX_SCOPE_LEN: usize = 1024;

impl Scope {
    /// Parses a space-delimited scope string; an empty or missing value is the empty set.
    pub fn parse(input: &str) -> Result<Self, ScopeError> {
        if input.len() > MAX_SCOPE_LEN {
            return Err(ScopeError::TooLong);
        }
        let mut set = BTreeSet::new();
        for token in input.split(' ').filter(|t| !t.is_empty()) {
            // scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
            let ok = token.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
            if !ok {
                return Err(ScopeError::BadToken(token.to_string()));
            }
            set.insert(token.to_string());
        }
        Ok(Self(set))
    }

    /// Whether the set holds `token`.
    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    /// Whether nothing was asked for.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tokens in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for t in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(t)?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sorts_and_dedups() {
        let s = Scope::parse("profile openid  profile").map(|s| s.to_string());
        assert_eq!(s, Ok("openid profile".to_string()));
        assert!(Scope::parse("").map(|s| s.is_empty()).unwrap_or(false));
    }

    #[test]
    fn rejects_quotes_backslashes_and_controls() {
        assert!(matches!(Scope::parse("a\"b"), Err(ScopeError::BadToken(_))));
        assert!(matches!(Scope::parse("a\\b"), Err(ScopeError::BadToken(_))));
        assert!(matches!(Scope::parse("a\tb"), Err(ScopeError::BadToken(_))));
        assert_eq!(Scope::parse(&"a ".repeat(600)), Err(ScopeError::TooLong));
    }
}
