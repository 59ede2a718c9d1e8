//! The stored sign-in of one profile: server and tokens in one file, written
//! atomically (temp file, fsync, rename; mode 0600), next to the device key.
//!
//! A stored server without tokens, or tokens without their server, cannot be
//! written: they are one value. Concurrent writers serialise on a lock file,
//! and a login never overwrites the result of a login that started after it.

use crate::dpop::DeviceKey;
use latchkey_proto::api::DeviceInfo;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Environment variable that moves every profile (tests, containers).
pub const CONFIG_DIR_ENV: &str = "LATCHKEY_CONFIG_DIR";

/// Why a profile could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// A filesystem error.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The session file does not parse.
    #[error("the session file {0} is damaged; run `latchkey logout` to remove it, then log in again")]
    Corrupt(PathBuf),
    /// The device key file does not parse.
    #[error("the device key {0} is damaged; remove it and log in again (this machine becomes a new device)")]
    BadKey(PathBuf),
    /// A profile name with characters that do not belong in a file name.
    #[error("profile names use letters, digits, '-' and '_' only")]
    BadName,
    /// No configuration directory could be found.
    #[error("cannot find a configuration directory; set {CONFIG_DIR_ENV}")]
    NoConfigDir,
}

/// One sign-in: the server and its tokens, always together.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    /// The server's base URL.
    pub server: String,
    /// The app the tokens belong to.
    pub client_id: String,
    /// Current access token.
    pub access_token: String,
    /// `Bearer` or `DPoP`.
    pub token_type: String,
    /// When the access token expires, ms since epoch.
    pub access_expires_at_ms: i64,
    /// Refresh token.
    pub refresh_token: Option<String>,
    /// Granted scope.
    pub scope: Option<String>,
    /// Who is signed in.
    pub username: String,
    /// This machine as the server knows it.
    pub device: Option<DeviceInfo>,
    /// When the login that produced this session started, ms since epoch:
    /// of two concurrent logins, the later one wins.
    pub login_started_at_ms: i64,
}

/// What a save did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    /// Written.
    Written,
    /// Not written: a login that started later already stored its session.
    Superseded(Box<Session>),
}

/// A profile directory.
#[derive(Debug, Clone)]
pub struct Profile {
    dir: PathBuf,
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ProfileError + 'a {
    move |source| ProfileError::Io { what, path: path.to_path_buf(), source }
}

/// A failed step of [`write_private`]: what was being done, to which file.
pub(crate) struct WriteFailure {
    pub(crate) what: &'static str,
    pub(crate) path: PathBuf,
    pub(crate) source: std::io::Error,
}

/// Replaces `path` (a file in `dir`) with `bytes` at once and durably, readable
/// by this user only (0600): written to a temporary file, synced, renamed.
pub(crate) fn write_private(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), WriteFailure> {
    fn fail<'a>(what: &'static str, p: &'a Path) -> impl FnOnce(std::io::Error) -> WriteFailure + 'a {
        move |source| WriteFailure { what, path: p.to_path_buf(), source }
    }
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let result = (|| {
        let mut f: File = opts.open(&tmp).map_err(fail("cannot create", &tmp))?;
        f.write_all(bytes).map_err(fail("cannot write", &tmp))?;
        f.sync_all().map_err(fail("cannot sync", &tmp))?;
        fs::rename(&tmp, path).map_err(fail("cannot replace", path))?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl Profile {
    /// The named profile under the user's configuration directory (or `LATCHKEY_CONFIG_DIR`).
    pub fn named(name: &str) -> Result<Self, ProfileError> {
        if name.is_empty()
            || name.len() > 64
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ProfileError::BadName);
        }
        let base = match std::env::var_os(CONFIG_DIR_ENV) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => directories::ProjectDirs::from("", "", "latchkey")
                .map(|d| d.config_dir().to_path_buf())
                .ok_or(ProfileError::NoConfigDir)?,
        };
        Ok(Self { dir: base.join("profiles").join(name) })
    }

    /// A profile in an explicit directory.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The profile's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn session_path(&self) -> PathBuf {
        self.dir.join("session.json")
    }

    fn key_path(&self) -> PathBuf {
        self.dir.join("device.key")
    }

    /// The outbox of events captured on this machine and not yet sent (see [`crate::outbox`]).
    pub fn outbox_path(&self) -> PathBuf {
        self.dir.join("outbox.sqlite3")
    }

    fn ensure_dir(&self) -> Result<(), ProfileError> {
        fs::create_dir_all(&self.dir).map_err(io("cannot create", &self.dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700));
        }
        Ok(())
    }

    /// Runs `f` holding the profile's lock, so writers never interleave.
    fn locked<T>(&self, f: impl FnOnce() -> Result<T, ProfileError>) -> Result<T, ProfileError> {
        self.ensure_dir()?;
        let path = self.dir.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io("cannot open", &path))?;
        let mut lock = fd_lock::RwLock::new(file);
        let _guard = lock.write().map_err(io("cannot lock", &path))?;
        f()
    }

    /// The stored session, if any.
    pub fn load(&self) -> Result<Option<Session>, ProfileError> {
        let path = self.session_path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|_| ProfileError::Corrupt(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ProfileError::Io { what: "cannot read", path, source: e }),
        }
    }

    /// Stores a new login's session unless a later-started login already stored one.
    pub fn save_login(&self, session: &Session) -> Result<Saved, ProfileError> {
        self.locked(|| {
            if let Ok(Some(existing)) = self.load() {
                if existing.login_started_at_ms > session.login_started_at_ms {
                    return Ok(Saved::Superseded(Box::new(existing)));
                }
            }
            self.write_atomic(&self.session_path(), &json(session)?)?;
            Ok(Saved::Written)
        })
    }

    /// Stores refreshed tokens of the same login; a newer login in between wins.
    pub fn save_refreshed(&self, session: &Session) -> Result<Saved, ProfileError> {
        self.locked(|| match self.load()? {
            Some(existing) if existing.login_started_at_ms != session.login_started_at_ms => {
                Ok(Saved::Superseded(Box::new(existing)))
            }
            _ => {
                self.write_atomic(&self.session_path(), &json(session)?)?;
                Ok(Saved::Written)
            }
        })
    }

    /// Removes the session (the device key stays: this machine stays the same device).
    pub fn remove(&self) -> Result<bool, ProfileError> {
        self.locked(|| {
            let path = self.session_path();
            match fs::remove_file(&path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(ProfileError::Io { what: "cannot remove", path, source: e }),
            }
        })
    }

    /// Whether this machine already has a device key in this profile.
    pub fn has_device_key(&self) -> bool {
        self.key_path().exists()
    }

    /// This machine's device key, made on first use (under the lock, so concurrent first logins share one).
    pub fn device_key(&self) -> Result<DeviceKey, ProfileError> {
        self.locked(|| {
            let path = self.key_path();
            match fs::read(&path) {
                Ok(bytes) => DeviceKey::from_pkcs8(&bytes).map_err(|_| ProfileError::BadKey(path)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let key = DeviceKey::generate().map_err(|_| ProfileError::BadKey(path.clone()))?;
                    self.write_atomic(&path, key.pkcs8())?;
                    Ok(key)
                }
                Err(e) => Err(ProfileError::Io { what: "cannot read", path, source: e }),
            }
        })
    }

    /// After the server accepted a key rotation: stores the new device key and the session
    /// with the tokens bound to it, together under the lock (the old key is of no use any more).
    pub fn save_rotated(&self, key: &DeviceKey, session: &Session) -> Result<(), ProfileError> {
        self.locked(|| {
            self.write_atomic(&self.key_path(), key.pkcs8())?;
            self.write_atomic(&self.session_path(), &json(session)?)
        })
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), ProfileError> {
        write_private(&self.dir, path, bytes).map_err(|f| ProfileError::Io {
            what: f.what,
            path: f.path,
            source: f.source,
        })
    }
}

fn json(s: &Session) -> Result<Vec<u8>, ProfileError> {
    serde_json::to_vec_pretty(s).map_err(|_| ProfileError::Corrupt(PathBuf::from("<memory>")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(started: i64) -> Session {
        Session {
            server: "http://s".into(),
            client_id: "latchkey-cli".into(),
            access_token: format!("at-{started}"),
            token_type: "DPoP".into(),
            access_expires_at_ms: 0,
            refresh_token: None,
            scope: None,
            username: "u".into(),
            device: None,
            login_started_at_ms: started,
        }
    }

    fn temp() -> Profile {
        Profile::at(std::env::temp_dir().join(format!("latchkey-profile-{}", uuid::Uuid::new_v4().simple())))
    }

    #[test]
    fn later_login_wins_and_files_are_private() -> Result<(), ProfileError> {
        let p = temp();
        assert_eq!(p.save_login(&session(2))?, Saved::Written);
        assert!(matches!(p.save_login(&session(1))?, Saved::Superseded(_)), "an earlier login must not overwrite");
        assert_eq!(p.load()?.map(|s| s.login_started_at_ms), Some(2));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(p.session_path()).map(|m| m.permissions().mode() & 0o777).ok();
            assert_eq!(mode, Some(0o600));
        }
        assert!(p.remove()?);
        assert_eq!(p.load()?, None);
        let _ = fs::remove_dir_all(p.dir());
        Ok(())
    }

    #[test]
    fn corrupt_files_are_reported_not_trusted() -> Result<(), ProfileError> {
        let p = temp();
        p.ensure_dir()?;
        fs::write(p.session_path(), b"{not json").map_err(io("write", &p.session_path()))?;
        assert!(matches!(p.load(), Err(ProfileError::Corrupt(_))));
        let _ = fs::remove_dir_all(p.dir());
        Ok(())
    }

    #[test]
    fn one_device_key_per_profile() -> Result<(), ProfileError> {
        let p = temp();
        let a = p.device_key()?;
        let b = p.device_key()?;
        assert_eq!(a.thumbprint(), b.thumbprint());
        let rotated = DeviceKey::generate().map_err(|_| ProfileError::BadName)?;
        p.save_rotated(&rotated, &session(3))?;
        assert_eq!(p.device_key()?.thumbprint(), rotated.thumbprint());
        assert_eq!(p.load()?.map(|s| s.login_started_at_ms), Some(3));
        let _ = fs::remove_dir_all(p.dir());
        Ok(())
    }
}
