//! Settings the server runs with; the binary fills them from flags, environment and file.

use std::time::Duration;

/// Everything tunable about a running server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Public base URL (the issuer), without a trailing slash.
    pub public_url: String,
    /// Seconds a device grant lives (RFC 8628 `expires_in`).
    pub device_code_lifetime_secs: i64,
    /// Seconds between polls a device starts with (RFC 8628 `interval`).
    pub poll_interval_secs: i64,
    /// Longest time the instant-approval endpoint holds a request.
    pub wait_timeout: Duration,
    /// Seconds an access token (and ID token) is valid.
    pub access_token_lifetime_secs: i64,
    /// Seconds a refresh token is valid.
    pub refresh_token_lifetime_secs: i64,
    /// Seconds a sign-in session is valid.
    pub session_lifetime_secs: i64,
    /// Whether to take the client IP from `X-Forwarded-For` (only behind a proxy you run).
    pub trust_proxy_headers: bool,
    /// Limits on wrong user-code entries.
    pub code_entry_limits: CodeEntryLimits,
    /// Limits on failed sign-ins.
    pub sign_in_limits: SignInLimits,
    /// Device authorization requests per client network per minute (0: unlimited).
    pub device_authorizations_per_minute: u32,
    /// QR sign-ins started per client network per minute (per app: 20 times that; 0: unlimited).
    pub pairings_per_minute: u32,
    /// Password hashes computed at once (each takes ~19 MiB); more wait briefly, then get 503.
    pub concurrent_password_checks: usize,
    /// How often the janitor sweeps expired rows.
    pub sweep_every: Duration,
    /// How often signing keys are re-read (to pick up `admin keys rotate`).
    pub key_refresh_every: Duration,
    /// Most active devices one user may have.
    pub device_cap: i64,
}

/// Wrong user-code guesses allowed, per window. RFC 8628 §5.1: with 20^8 ≈ 2^34.5
/// codes, 5 wrong guesses per user per code lifetime keeps one attacker's chance
/// of hitting a given live code near 2^-32; the network and global limits bound
/// what many accounts together can try.
#[derive(Debug, Clone, Copy)]
pub struct CodeEntryLimits {
    /// Wrong entries per signed-in user.
    pub per_user: u32,
    /// Wrong entries per client network (IPv4 address, IPv6 /64).
    pub per_network: u32,
    /// Wrong entries across the whole server.
    pub global: u32,
    /// Window length in seconds.
    pub window_secs: i64,
}

impl Default for CodeEntryLimits {
    fn default() -> Self {
        Self { per_user: 5, per_network: 20, global: 200, window_secs: 600 }
    }
}

/// Failed password sign-ins allowed, per window (each costs an argon2 hash).
#[derive(Debug, Clone, Copy)]
pub struct SignInLimits {
    /// Failures per username.
    pub per_username: u32,
    /// Failures per client network.
    pub per_network: u32,
    /// Window length in seconds.
    pub window_secs: i64,
}

impl Default for SignInLimits {
    fn default() -> Self {
        Self { per_username: 10, per_network: 50, window_secs: 600 }
    }
}

impl ServerConfig {
    /// Defaults for a server reachable at `public_url`.
    pub fn new(public_url: impl Into<String>) -> Self {
        Self {
            public_url: public_url.into().trim_end_matches('/').to_string(),
            device_code_lifetime_secs: latchkey_domain::device_grant::DEFAULT_LIFETIME_SECS,
            poll_interval_secs: latchkey_domain::device_grant::DEFAULT_INTERVAL_SECS,
            wait_timeout: Duration::from_secs(30),
            access_token_lifetime_secs: 900,
            refresh_token_lifetime_secs: 30 * 24 * 3600,
            session_lifetime_secs: 12 * 3600,
            trust_proxy_headers: false,
            code_entry_limits: CodeEntryLimits::default(),
            sign_in_limits: SignInLimits::default(),
            device_authorizations_per_minute: 120,
            pairings_per_minute: 30,
            concurrent_password_checks: std::thread::available_parallelism().map(|n| n.get() * 2).unwrap_or(4),
            sweep_every: Duration::from_secs(60),
            key_refresh_every: Duration::from_secs(60),
            device_cap: latchkey_domain::device::DEFAULT_DEVICE_CAP,
        }
    }

    /// Whether cookies must be `Secure` (the public URL is https).
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// An absolute URL on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.public_url, path)
    }
}
