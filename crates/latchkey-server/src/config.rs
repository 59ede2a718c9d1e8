//! Settings the server runs with, declared once in [`settings!`]: each one's
//! flag, environment variable, file key, default and allowed range.
//!
//! One naming rule: the field `wait_timeout` is the flag `--wait-timeout`, the
//! environment variable `LATCHKEY_WAIT_TIMEOUT` and the file key `wait_timeout`.
//! Precedence is flag, then environment (both clap), then the TOML file, then
//! the default: [`StorageArgs::or`] and [`ServeArgs::or`] lay one source over
//! another, [`Settings::resolve`] fills in defaults, [`Settings::validate`] checks.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::time::Duration;

/// The resolved type of a setting: itself, or `Option` when it has no default.
macro_rules! resolved_ty {
    ($t:ty) => { Option<$t> };
    ($t:ty, $d:expr) => { $t };
}

/// The default of a setting: its declared default, or `None`.
macro_rules! default_value {
    () => {
        None
    };
    ($d:expr) => {
        $d
    };
}

/// A layered value with its default filled in (settings without a default stay `Option`).
macro_rules! resolve_value {
    ($v:expr, $def:expr) => {
        $v
    };
    ($v:expr, $def:expr, $d:expr) => {
        $v.unwrap_or($def)
    };
}

/// Declares every setting once and generates, from that one list: the clap
/// groups (flags and environment, every field optional), the TOML file shape
/// (`deny_unknown_fields`), the resolved [`Settings`] with defaults, and its
/// range checks.
macro_rules! settings {
    (
        $(
            $(#[doc = $gdoc:literal])*
            group $gvar:ident : $Group:ident {
                $(
                    $(#[doc = $doc:literal])*
                    #[arg($($arg:tt)*)]
                    $(#[serde($($serde:tt)*)])*
                    $(#[range($lo:expr, $hi:expr)])?
                    $field:ident : $ty:ty $(= $default:expr)?
                ),* $(,)?
            }
        )*
    ) => {
        $(
            $(#[doc = $gdoc])*
            #[derive(Debug, Clone, Default, clap::Args)]
            pub struct $Group {
                $(
                    $(#[doc = $doc])*
                    #[arg($($arg)*)]
                    pub $field: Option<$ty>,
                )*
            }

            impl $Group {
                /// Each setting given here, or else the one `lower` gives (flags and environment over the file).
                pub fn or(self, lower: Self) -> Self {
                    Self { $($field: self.$field.or(lower.$field),)* }
                }
            }
        )*

        /// The TOML file named by `--config`: any setting, keyed by its name in snake_case.
        #[derive(Debug, Clone, Default, serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct SettingsFile {
            $($(
                $(#[doc = $doc])*
                $(#[serde($($serde)*)])*
                pub $field: Option<$ty>,
            )*)*
        }

        impl SettingsFile {
            /// Every key the file accepts, in declaration order (also each flag's name in snake_case).
            pub const KEYS: &'static [&'static str] = &[$($(stringify!($field),)*)*];

            /// Parses the file's text.
            pub fn parse(text: &str) -> Result<Self, SettingsError> {
                toml::from_str(text).map_err(|e| SettingsError::File(e.to_string()))
            }

            $(
                /// The part of the file this group of flags covers.
                pub fn $gvar(&self) -> $Group {
                    $Group { $($field: self.$field.clone(),)* }
                }
            )*
        }

        /// Every operator setting, resolved: given, or its default.
        #[derive(Debug, Clone)]
        pub struct Settings {
            $($(
                $(#[doc = $doc])*
                pub $field: resolved_ty!($ty $(, $default)?),
            )*)*
        }

        impl Default for Settings {
            fn default() -> Self {
                Self { $($($field: default_value!($($default)?),)*)* }
            }
        }

        impl Settings {
            /// Fills what no layer gave with its default (does not validate: see [`Settings::validate`]).
            pub fn resolve($($gvar: $Group),*) -> Self {
                let defaults = Self::default();
                Self { $($($field: resolve_value!($gvar.$field, defaults.$field $(, $default)?),)*)* }
            }

            /// Checks every declared range, then the URLs, then that TLS files come in pairs.
            pub fn validate(&self) -> Result<(), SettingsError> {
                $($($(
                    check_range(stringify!($field), &self.$field, $lo, $hi)?;
                )?)*)*
                self.check_urls()?;
                self.check_tls()
            }
        }
    };
}

/// Seconds, as a [`Duration`], for declaring defaults and ranges.
const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

settings! {
    /// Where data lives: shared by `latchkey serve` and `latchkey admin` (global flags).
    group storage: StorageArgs {
        /// Directory for the SQLite database.
        #[arg(long, env = "LATCHKEY_DATA_DIR", global = true)]
        data_dir: PathBuf = PathBuf::from("latchkey-data"),
        /// PostgreSQL URL (postgres://...); when set, SQLite is not used.
        #[arg(long, env = "LATCHKEY_DATABASE", global = true)]
        database: String,
        /// SQLite durability: `full` fsyncs every commit; `normal` survives process crashes, not power loss.
        #[arg(long, env = "LATCHKEY_SQLITE_SYNC", global = true, value_enum)]
        sqlite_sync: SqliteSync = SqliteSync::Full,
        /// File holding the server secret key (lksk_…) that encrypts the stored keys; or set LATCHKEY_SECRET_KEY.
        #[arg(long, env = "LATCHKEY_SECRET_KEY_FILE", global = true)]
        secret_key_file: PathBuf,
    }

    /// How the server listens and behaves: the flags of `latchkey serve`.
    group serve: ServeArgs {
        /// Address to listen on (port 0 picks a free one).
        #[arg(long, env = "LATCHKEY_LISTEN")]
        listen: String = "127.0.0.1:8080".to_string(),
        /// Public base URL, used as the issuer and in links (default http://<listen address>).
        #[arg(long, env = "LATCHKEY_PUBLIC_URL")]
        public_url: String,
        /// Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key. Re-read on SIGHUP.
        #[arg(long, env = "LATCHKEY_TLS_CERT")]
        tls_cert: PathBuf,
        /// The private key (PEM) of --tls-cert; needs --tls-cert. Re-read on SIGHUP.
        #[arg(long, env = "LATCHKEY_TLS_KEY")]
        tls_key: PathBuf,
        /// Take client IPs from the right-most X-Forwarded-For entry (only behind a proxy you control).
        #[arg(long, env = "LATCHKEY_TRUST_PROXY_HEADERS", num_args = 0..=1, default_missing_value = "true")]
        trust_proxy_headers: bool = false,
        /// How long a device code lives (RFC 8628 expires_in), e.g. 10m or 600.
        #[arg(long, env = "LATCHKEY_DEVICE_CODE_LIFETIME", value_parser = parse_duration)]
        #[serde(alias = "device_code_lifetime_secs", deserialize_with = "deserialize_duration")]
        #[range(secs(60), secs(3600))]
        device_code_lifetime: Duration = secs(latchkey_domain::device_grant::DEFAULT_LIFETIME_SECS.unsigned_abs()),
        /// Time between polls a device starts with (RFC 8628 interval), e.g. 5s.
        #[arg(long, env = "LATCHKEY_POLL_INTERVAL", value_parser = parse_duration)]
        #[serde(alias = "poll_interval_secs", deserialize_with = "deserialize_duration")]
        #[range(secs(1), secs(60))]
        poll_interval: Duration = secs(latchkey_domain::device_grant::DEFAULT_INTERVAL_SECS.unsigned_abs()),
        /// Longest time the instant-approval endpoint holds a request, e.g. 30s.
        #[arg(long, env = "LATCHKEY_WAIT_TIMEOUT", value_parser = parse_duration)]
        #[serde(alias = "wait_timeout_secs", deserialize_with = "deserialize_duration")]
        #[range(secs(1), secs(120))]
        wait_timeout: Duration = secs(30),
        /// How long an access token (and ID token) is valid, e.g. 15m.
        #[arg(long, env = "LATCHKEY_ACCESS_TOKEN_LIFETIME", value_parser = parse_duration)]
        #[serde(alias = "access_token_lifetime_secs", deserialize_with = "deserialize_duration")]
        #[range(secs(60), secs(86_400))]
        access_token_lifetime: Duration = secs(900),
        /// How long a refresh token is valid, e.g. 30d.
        #[arg(long, env = "LATCHKEY_REFRESH_TOKEN_LIFETIME", value_parser = parse_duration)]
        #[serde(alias = "refresh_token_lifetime_secs", deserialize_with = "deserialize_duration")]
        #[range(secs(300), secs(31_536_000))]
        refresh_token_lifetime: Duration = secs(30 * 24 * 3600),
        /// How long a browser or API sign-in session is valid, e.g. 12h.
        #[arg(long, env = "LATCHKEY_SESSION_LIFETIME", value_parser = parse_duration)]
        #[serde(alias = "session_lifetime_secs", deserialize_with = "deserialize_duration")]
        #[range(secs(300), secs(2_592_000))]
        session_lifetime: Duration = secs(12 * 3600),
        /// Most active devices one user may have.
        #[arg(long, env = "LATCHKEY_DEVICE_CAP")]
        #[range(1, 10_000)]
        device_cap: i64 = latchkey_domain::device::DEFAULT_DEVICE_CAP,
        /// Most requests that may wait at once on one device code or QR code (more get 429).
        #[arg(long, env = "LATCHKEY_WAITERS_PER_CODE")]
        #[range(1, 100)]
        waiters_per_code: i64 = 4,
        /// Most long-polls and device channels one client network may hold open at once, over all codes (0: no cap).
        #[arg(long, env = "LATCHKEY_WAITERS_PER_NETWORK")]
        waiters_per_network: u32 = 256,
        /// Most connections open at once; past it, new ones wait to be accepted.
        #[arg(long, env = "LATCHKEY_MAX_CONNECTIONS")]
        #[range(1, 1_000_000)]
        max_connections: i64 = 10_000,
        /// How long a client has to send a request's headers (and an idle connection stays open), e.g. 10s.
        #[arg(long, env = "LATCHKEY_HEADER_READ_TIMEOUT", value_parser = parse_duration)]
        #[serde(deserialize_with = "deserialize_duration")]
        #[range(secs(1), secs(120))]
        header_read_timeout: Duration = secs(10),
        /// Most members a trusted session may have, its creator included.
        #[arg(long, env = "LATCHKEY_SESSION_MEMBER_LIMIT")]
        #[range(2, 64)]
        session_member_limit: i64 = latchkey_domain::trusted_session::DEFAULT_MEMBER_LIMIT as i64,
        /// Device authorizations per client network per minute (0: unlimited).
        #[arg(long, env = "LATCHKEY_DEVICE_AUTH_PER_MINUTE")]
        device_auth_per_minute: u32 = 120,
        /// Wrong passwords in a row (within --lock-for) that lock an account (0: never lock).
        #[arg(long, env = "LATCHKEY_LOCK_AFTER_FAILURES")]
        lock_after_failures: u32 = 10,
        /// How long such a lock lasts, e.g. 15m.
        #[arg(long, env = "LATCHKEY_LOCK_FOR", value_parser = parse_duration)]
        #[serde(deserialize_with = "deserialize_duration")]
        #[range(secs(60), secs(86_400))]
        lock_for: Duration = secs(15 * 60),
        /// Address to serve Prometheus metrics on, at /metrics (off when unset; port 0 picks a free one).
        #[arg(long, env = "LATCHKEY_METRICS_LISTEN")]
        metrics_listen: String,
    }
}

/// SQLite durability (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSync {
    /// Fsync every commit.
    Full,
    /// Survives process crashes, not power loss.
    Normal,
}

/// Why settings were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A value outside its allowed range.
    #[error("{} must be between {min} and {max}, not {got}", describe(.key))]
    OutOfRange {
        /// The setting's file key.
        key: &'static str,
        /// Smallest allowed value.
        min: String,
        /// Largest allowed value.
        max: String,
        /// The value given.
        got: String,
    },
    /// A public URL that is not a base URL.
    #[error("{} must be a base URL like https://login.example.com (http:// only for local use), not {:?}", describe("public_url"), .0)]
    PublicUrl(String),
    /// A database that is not a PostgreSQL URL.
    #[error("{} must be a postgres:// URL (leave it out to use SQLite in --data-dir)", describe("database"))]
    Database,
    /// A TLS certificate without its key, or a key without its certificate.
    #[error("{} needs {} as well: give both to serve HTTPS, or neither", describe(.given), describe(.missing))]
    TlsPair {
        /// The setting given.
        given: &'static str,
        /// The setting missing.
        missing: &'static str,
    },
    /// A config file that does not parse.
    #[error("{0}")]
    File(String),
}

/// A setting named every way an operator may have given it.
fn describe(key: &str) -> String {
    format!("--{} (environment {}, file key {key})", key.replace('_', "-"), env_name(key))
}

/// The environment variable of a setting, by the naming rule.
pub fn env_name(key: &str) -> String {
    format!("LATCHKEY_{}", key.to_ascii_uppercase())
}

/// A value with an order and a human-readable form, for range checks.
trait Bounded: PartialOrd {
    /// How it is shown in an error.
    fn show(&self) -> String;
}

impl Bounded for Duration {
    /// Days, hours, minutes and seconds as an operator writes them (`365d`, `1h 30m`);
    /// humantime's own format counts in 30.44-day months and 365.25-day years.
    fn show(&self) -> String {
        if self.subsec_nanos() != 0 {
            return humantime::format_duration(*self).to_string();
        }
        let secs = self.as_secs();
        let parts = [(secs / 86_400, "d"), (secs / 3600 % 24, "h"), (secs / 60 % 60, "m"), (secs % 60, "s")];
        let shown: Vec<String> = parts.iter().filter(|(n, _)| *n > 0).map(|(n, unit)| format!("{n}{unit}")).collect();
        if shown.is_empty() {
            "0s".to_string()
        } else {
            shown.join(" ")
        }
    }
}

impl Bounded for i64 {
    fn show(&self) -> String {
        self.to_string()
    }
}

fn check_range<T: Bounded>(key: &'static str, v: &T, lo: T, hi: T) -> Result<(), SettingsError> {
    if lo <= *v && *v <= hi {
        Ok(())
    } else {
        Err(SettingsError::OutOfRange { key, min: lo.show(), max: hi.show(), got: v.show() })
    }
}

/// Parses a duration: whole seconds (`600`) or humantime (`10m`, `1h 30m`, `500ms`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    humantime::parse_duration(s).map_err(|e| format!("{e} (write e.g. 30s, 10m, 12h, or whole seconds)"))
}

/// Reads a duration from the file: an integer (seconds) or a humantime string.
fn deserialize_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }
    match <Raw as serde::Deserialize>::deserialize(d)? {
        Raw::Secs(n) => Ok(Some(Duration::from_secs(n))),
        Raw::Text(s) => parse_duration(&s).map(Some).map_err(serde::de::Error::custom),
    }
}

/// Checks that a public URL is an absolute http(s) URL without a path, query or fragment.
fn check_public_url(url: &str) -> Result<(), SettingsError> {
    let trimmed = url.trim_end_matches('/');
    match trimmed.strip_prefix("https://").or_else(|| trimmed.strip_prefix("http://")) {
        Some(rest) if !rest.is_empty() && !rest.contains(['/', '?', '#', ' ']) => Ok(()),
        _ => Err(SettingsError::PublicUrl(url.to_string())),
    }
}

impl Settings {
    fn check_urls(&self) -> Result<(), SettingsError> {
        if let Some(url) = &self.public_url {
            check_public_url(url)?;
        }
        match &self.database {
            Some(url) if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) => {
                Err(SettingsError::Database)
            }
            _ => Ok(()),
        }
    }

    fn check_tls(&self) -> Result<(), SettingsError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => Err(SettingsError::TlsPair { given: "tls_cert", missing: "tls_key" }),
            (None, Some(_)) => Err(SettingsError::TlsPair { given: "tls_key", missing: "tls_cert" }),
            _ => Ok(()),
        }
    }
}

/// Everything a running server needs: the operator [`Settings`] (through `Deref`) and limits that are not settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The operator settings.
    pub settings: Settings,
    /// Public base URL (the issuer), without a trailing slash: `settings.public_url` or one derived from the listener.
    pub public_url: String,
    /// Limits on wrong user-code entries.
    pub code_entry_limits: CodeEntryLimits,
    /// Limits on failed sign-ins.
    pub sign_in_limits: SignInLimits,
    /// QR sign-ins started per client network per minute (0: unlimited); per app a budget of 20 times
    /// that, past which each network may start a tenth of this (`rate_limit::pairing`).
    pub pairings_per_minute: u32,
    /// Password hashes computed at once (each takes ~19 MiB); more wait briefly, then get 503.
    pub concurrent_password_checks: usize,
    /// How often the janitor sweeps expired rows.
    pub sweep_every: Duration,
    /// How often signing keys are re-read (to pick up `admin keys rotate`).
    pub key_refresh_every: Duration,
    /// How often the audit sealer looks for entries to seal (the lag it adds is at most this plus one seal).
    pub audit_seal_every: Duration,
}

impl Deref for ServerConfig {
    type Target = Settings;
    fn deref(&self) -> &Settings {
        &self.settings
    }
}

impl DerefMut for ServerConfig {
    fn deref_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }
}

/// Wrong user-code guesses allowed, per window. RFC 8628 §5.1: with 20^8 ≈ 2^34.5
/// codes, 5 wrong guesses per user per code lifetime keeps one attacker's chance
/// of hitting a given live code near 2^-32; the network and global limits bound
/// what many accounts together can try. The global budget refuses nobody by
/// itself: once spent, users and networks may only go on while they have used
/// less than their `*_while_spent` allowance, so those who spent it are stopped
/// and everyone else is not (`latchkey_domain::rate_limit`).
#[derive(Debug, Clone, Copy)]
pub struct CodeEntryLimits {
    /// Wrong entries per signed-in user.
    pub per_user: u32,
    /// Wrong entries per client network (IPv4 address, IPv6 /64).
    pub per_network: u32,
    /// Wrong entries across the whole server, before the allowances below apply.
    pub global: u32,
    /// Wrong entries a user may have made and still go on while the global budget is spent (one typo and a retry).
    pub per_user_while_spent: u32,
    /// Wrong entries a network may have made and still go on while the global budget is spent.
    pub per_network_while_spent: u32,
    /// Window length in seconds.
    pub window_secs: i64,
}

impl Default for CodeEntryLimits {
    fn default() -> Self {
        Self {
            per_user: 5,
            per_network: 20,
            global: 200,
            per_user_while_spent: 2,
            per_network_while_spent: 2,
            window_secs: 600,
        }
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

/// Whole seconds of a duration, as the wire and the store count them.
fn whole_secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl ServerConfig {
    /// Default settings for a server reachable at `public_url`.
    pub fn new(public_url: impl Into<String>) -> Self {
        Self::from_settings(Settings::default(), public_url)
    }

    /// A server with these settings, reachable at `public_url` (not validated: see [`ServerConfig::validate`]).
    pub fn from_settings(settings: Settings, public_url: impl Into<String>) -> Self {
        Self {
            settings,
            public_url: public_url.into().trim_end_matches('/').to_string(),
            code_entry_limits: CodeEntryLimits::default(),
            sign_in_limits: SignInLimits::default(),
            pairings_per_minute: 30,
            concurrent_password_checks: std::thread::available_parallelism().map(|n| n.get() * 2).unwrap_or(4),
            sweep_every: Duration::from_secs(60),
            key_refresh_every: Duration::from_secs(60),
            audit_seal_every: Duration::from_millis(250),
        }
    }

    /// Checks the settings (the one place ranges are checked) and the public URL.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.settings.validate()?;
        check_public_url(&self.public_url)
    }

    /// Whether cookies must be `Secure` (the public URL is https).
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// An absolute URL on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.public_url, path)
    }

    /// The device code lifetime in whole seconds (RFC 8628 `expires_in`).
    pub fn device_code_lifetime_secs(&self) -> i64 {
        whole_secs(self.device_code_lifetime)
    }

    /// The starting poll interval in whole seconds (RFC 8628 `interval`).
    pub fn poll_interval_secs(&self) -> i64 {
        whole_secs(self.poll_interval)
    }

    /// The access token lifetime in whole seconds.
    pub fn access_token_lifetime_secs(&self) -> i64 {
        whole_secs(self.access_token_lifetime)
    }

    /// The refresh token lifetime in whole seconds.
    pub fn refresh_token_lifetime_secs(&self) -> i64 {
        whole_secs(self.refresh_token_lifetime)
    }

    /// The lockout rule these settings give: `lock_after_failures` wrong passwords
    /// within `lock_for` of the first lock the account for `lock_for`.
    pub fn lock_policy(&self) -> latchkey_domain::account::LockPolicy {
        let lock_for_secs = whole_secs(self.lock_for);
        latchkey_domain::account::LockPolicy {
            failures: self.lock_after_failures,
            window_secs: lock_for_secs,
            lock_for_secs,
        }
    }

    /// The session lifetime in whole seconds.
    pub fn session_lifetime_secs(&self) -> i64 {
        whole_secs(self.session_lifetime)
    }
}

impl fmt::Display for SqliteSync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full => "full",
            Self::Normal => "normal",
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use clap::{Args, Command, Parser};

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied())).expect("parses")
    }

    #[test]
    fn every_flag_follows_the_naming_rule() {
        let cmd = ServeArgs::augment_args(StorageArgs::augment_args(Command::new("t")));
        let mut keys = Vec::new();
        for arg in cmd.get_arguments() {
            let long = arg.get_long().expect("every setting is a long flag");
            let key = long.replace('-', "_");
            let env = arg.get_env().and_then(|e| e.to_str()).expect("every setting has an environment variable");
            assert_eq!(env, env_name(&key), "--{long}");
            keys.push(key);
        }
        assert_eq!(keys, SettingsFile::KEYS, "the file keys are the flags in snake_case");
    }

    #[test]
    fn defaults_are_valid_and_match_the_old_ones() {
        let s = Settings::default();
        s.validate().expect("defaults are valid");
        assert_eq!(s.device_code_lifetime, secs(600));
        assert_eq!(s.poll_interval, secs(5));
        assert_eq!(s.device_cap, 50);
        assert_eq!(s.sqlite_sync, SqliteSync::Full);
        ServerConfig::new("http://127.0.0.1:8080/").validate().expect("default config is valid");
    }

    #[test]
    fn durations_take_seconds_or_units() {
        assert_eq!(parse_duration("600"), Ok(secs(600)));
        assert_eq!(parse_duration("10m"), Ok(secs(600)));
        assert_eq!(parse_duration("1h 30m"), Ok(secs(5400)));
        assert!(parse_duration("soon").is_err());
        let cli = parse(&["--wait-timeout", "45s", "--session-lifetime", "3600", "--sqlite-sync", "normal"]);
        assert_eq!(cli.serve.wait_timeout, Some(secs(45)));
        assert_eq!(cli.serve.session_lifetime, Some(secs(3600)));
        assert_eq!(cli.storage.sqlite_sync, Some(SqliteSync::Normal));
        assert!(Cli::try_parse_from(["t", "--sqlite-sync", "sometimes"]).is_err());
        assert!(Cli::try_parse_from(["t", "--poll-interval", "often"]).is_err());
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_defaults() {
        let file = SettingsFile::parse(
            "wait_timeout = \"50s\"\nsession_lifetime = 7200\ndevice_cap = 7\nsqlite_sync = \"normal\"\n",
        )
        .expect("file parses");
        let cli = parse(&["--wait-timeout", "40", "--trust-proxy-headers"]);
        let s = Settings::resolve(cli.storage.or(file.storage()), cli.serve.or(file.serve()));
        assert_eq!(s.wait_timeout, secs(40));
        assert_eq!(s.session_lifetime, secs(7200));
        assert_eq!(s.device_cap, 7);
        assert!(s.trust_proxy_headers);
        assert_eq!(s.sqlite_sync, SqliteSync::Normal);
        assert_eq!(s.access_token_lifetime, secs(900));
        assert_eq!(s.public_url, None);
    }

    #[test]
    fn the_file_refuses_unknown_keys_and_keeps_the_old_ones() {
        let err = SettingsFile::parse("wait_timout = 5\n").expect_err("typo");
        assert!(err.to_string().contains("wait_timout"), "{err}");
        let old = SettingsFile::parse("wait_timeout_secs = 12\ndevice_code_lifetime_secs = 300\n").expect("old keys");
        assert_eq!(old.wait_timeout, Some(secs(12)));
        assert_eq!(old.device_code_lifetime, Some(secs(300)));
        assert!(SettingsFile::parse("wait_timeout = \"often\"\n").is_err());
        assert!(SettingsFile::parse("sqlite_sync = \"sometimes\"\n").is_err());
    }

    #[test]
    fn validation_names_the_setting_and_its_range() {
        let mut s = Settings { wait_timeout: Duration::from_millis(200), ..Settings::default() };
        let msg = s.validate().expect_err("too short").to_string();
        assert_eq!(
            msg,
            "--wait-timeout (environment LATCHKEY_WAIT_TIMEOUT, file key wait_timeout) must be between 1s and 2m, not 200ms"
        );
        s.wait_timeout = secs(30);
        s.device_cap = 0;
        assert!(s.validate().expect_err("cap").to_string().contains("between 1 and 10000, not 0"));
        s.device_cap = 5;
        s.public_url = Some("login.example.com".into());
        assert!(matches!(s.validate(), Err(SettingsError::PublicUrl(_))));
        s.public_url = Some("https://login.example.com/".into());
        s.database = Some("mysql://x".into());
        assert_eq!(s.validate(), Err(SettingsError::Database));
        s.database = Some("postgres://db/latchkey".into());
        s.validate().expect("valid");
        assert!(ServerConfig::new("https://x.example/app").validate().is_err());
        s.refresh_token_lifetime = secs(400 * 86_400);
        assert!(s.validate().expect_err("too long").to_string().ends_with("between 5m and 365d, not 400d"));
        s.refresh_token_lifetime = secs(90_061);
        s.session_lifetime = secs(0);
        assert!(s.validate().expect_err("zero").to_string().ends_with("between 5m and 30d, not 0s"));
        assert_eq!(Bounded::show(&secs(90_061)), "1d 1h 1m 1s");
    }

    #[test]
    fn tls_certificate_and_key_come_together() {
        let cli = parse(&["--tls-cert", "/etc/latchkey/cert.pem"]);
        let s = Settings::resolve(cli.storage, cli.serve);
        assert_eq!(
            s.validate().expect_err("key missing").to_string(),
            "--tls-cert (environment LATCHKEY_TLS_CERT, file key tls_cert) needs \
             --tls-key (environment LATCHKEY_TLS_KEY, file key tls_key) as well: give both to serve HTTPS, or neither"
        );
        let file = SettingsFile::parse("tls_key = \"/etc/latchkey/key.pem\"\n").expect("file parses");
        let only_key = Settings::resolve(StorageArgs::default(), file.serve());
        assert_eq!(only_key.validate(), Err(SettingsError::TlsPair { given: "tls_key", missing: "tls_cert" }));
        let both = parse(&["--tls-cert", "c.pem", "--tls-key", "k.pem"]);
        let s = Settings::resolve(both.storage, both.serve);
        s.validate().expect("both given");
        assert_eq!(s.tls_cert, Some(PathBuf::from("c.pem")));
        Settings::default().validate().expect("neither given");
    }
}
