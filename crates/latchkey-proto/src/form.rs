//! Form field names of the OAuth endpoints (RFC 6749, RFC 8628, RFC 7009,
//! RFC 7662) and Latchkey's device extensions, as clients send them.

/// `client_id`.
pub const CLIENT_ID: &str = "client_id";
/// `client_secret` (confidential apps).
pub const CLIENT_SECRET: &str = "client_secret";
/// `scope`.
pub const SCOPE: &str = "scope";
/// `grant_type`.
pub const GRANT_TYPE: &str = "grant_type";
/// `device_code` (RFC 8628).
pub const DEVICE_CODE: &str = "device_code";
/// `refresh_token`.
pub const REFRESH_TOKEN: &str = "refresh_token";
/// `token` (introspection and revocation).
pub const TOKEN: &str = "token";
/// Latchkey: the device's display name.
pub const DEVICE_NAME: &str = "device_name";
/// Latchkey: the device's explicit slug.
pub const DEVICE_SLUG: &str = "device_slug";
/// Latchkey: where the device is (`later` to defer).
pub const DEVICE_LOCATION: &str = "device_location";
/// Latchkey: operating system and architecture.
pub const DEVICE_PLATFORM: &str = "device_platform";
/// Latchkey: client software version.
pub const CLIENT_VERSION: &str = "client_version";

/// `grant_type` of a refresh (RFC 6749 §6).
pub const REFRESH_TOKEN_GRANT: &str = "refresh_token";
