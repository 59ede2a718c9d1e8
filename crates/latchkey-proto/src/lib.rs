//! Wire types shared by the Latchkey server and its client library.
//!
//! Standard OAuth bodies keep their RFC field names; Latchkey's own JSON API
//! lives under `/api/v1` and its extensions in discovery carry a `latchkey_` prefix.

pub mod api;
pub mod form;
pub mod oauth;
pub mod pairing;
pub mod paths;
pub mod trust;

/// Path of the verification page people open to approve a device (RFC 8628 `verification_uri`).
pub const VERIFICATION_PATH: &str = "/device";
/// The built-in public client our own CLI uses.
pub const CLI_CLIENT_ID: &str = "latchkey-cli";
/// `grant_type` of the RFC 8628 token request.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
