//! What a device keeps on its own disk for trusted sessions: the keys the
//! user confirmed at `trust add` (never taken from the server on its word),
//! and the session keys it holds with its send counters.
//!
//! Two JSON files in the state directory (a profile's directory), each
//! written atomically with mode 0600 under a lock file, so a `listen` and a
//! `send` running at once never lose each other's writes.

use crate::seal::SessionKey;
use crate::trusted::TrustedError;
use latchkey_domain::trust::PublicKey;
use latchkey_domain::trusted_session::Descriptor;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

/// File of locally trusted device keys.
const TRUSTED_FILE: &str = "trusted.json";
/// File of held session keys and send counters.
const SESSIONS_FILE: &str = "trusted-sessions.json";
/// Lock file both are written under.
const LOCK_FILE: &str = ".trust.lock";
/// Key generations kept per session (older ones only decrypt a stale backlog).
const EPOCHS_KEPT: usize = 4;

/// A device key the user confirmed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TrustedKey {
    /// Ed25519 public key, base64url.
    pub key: String,
    /// The device's name when it was trusted (for people).
    #[serde(default)]
    pub name: String,
    /// When the user confirmed it (or when a signed rotation moved it), ms since epoch.
    pub trusted_at_ms: i64,
}

impl TrustedKey {
    /// The key.
    pub fn public_key(&self) -> Result<PublicKey, TrustedError> {
        Ok(PublicKey::from_b64(&self.key)?)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TrustedFile {
    devices: BTreeMap<String, TrustedKey>,
}

/// One session as this device holds it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HeldSession {
    /// The device that made it.
    pub creator: String,
    /// Members at the latest key generation held, sorted.
    pub members: Vec<String>,
    /// When it ends, ms since epoch.
    pub expires_at: i64,
    /// Session keys by key generation, base64url.
    pub keys: BTreeMap<u32, String>,
    /// The `seq` of this device's next message.
    pub next_seq: i64,
    /// The highest `seq` read from each other member: a message at or below it is a replay.
    #[serde(default)]
    pub received: BTreeMap<String, i64>,
}

impl HeldSession {
    /// The newest key generation held, and its key.
    pub fn latest(&self) -> Result<Option<(u32, SessionKey)>, TrustedError> {
        match self.keys.iter().next_back() {
            Some((epoch, key)) => Ok(Some((*epoch, SessionKey::from_b64(key)?))),
            None => Ok(None),
        }
    }

    /// The key of one key generation.
    pub fn key(&self, epoch: u32) -> Result<Option<SessionKey>, TrustedError> {
        self.keys.get(&epoch).map(|k| SessionKey::from_b64(k)).transpose()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct SessionsFile {
    sessions: BTreeMap<String, HeldSession>,
    /// Where the channel was read up to.
    #[serde(default)]
    cursor: i64,
}

/// The trust and session state of one device, in one directory.
#[derive(Debug, Clone)]
pub struct TrustStore {
    dir: PathBuf,
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> TrustedError + 'a {
    move |source| TrustedError::Io { what, path: path.to_path_buf(), source }
}

impl TrustStore {
    /// The state kept in `dir` (made on first write, mode 0700).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every device this machine trusts, by ID.
    pub fn trusted(&self) -> Result<BTreeMap<String, TrustedKey>, TrustedError> {
        Ok(self.read::<TrustedFile>(TRUSTED_FILE)?.devices)
    }

    /// The key this machine trusts for `device`, if any.
    pub fn trusted_key(&self, device: &str) -> Result<Option<PublicKey>, TrustedError> {
        self.trusted()?.get(device).map(TrustedKey::public_key).transpose()
    }

    /// Records that this machine trusts `key` for `device`.
    pub fn set_trusted(&self, device: &str, key: &PublicKey, name: &str, now_ms: i64) -> Result<(), TrustedError> {
        self.update::<TrustedFile, _>(TRUSTED_FILE, |f| {
            let name = if name.is_empty() {
                f.devices.get(device).map(|t| t.name.clone()).unwrap_or_default()
            } else {
                name.to_string()
            };
            f.devices.insert(device.to_string(), TrustedKey { key: key.to_b64(), name, trusted_at_ms: now_ms });
        })
    }

    /// Forgets `device`; whether it was trusted.
    pub fn remove_trusted(&self, device: &str) -> Result<bool, TrustedError> {
        let mut removed = false;
        self.update::<TrustedFile, _>(TRUSTED_FILE, |f| removed = f.devices.remove(device).is_some())?;
        Ok(removed)
    }

    /// Every session this device holds a key of.
    pub fn sessions(&self) -> Result<BTreeMap<String, HeldSession>, TrustedError> {
        Ok(self.read::<SessionsFile>(SESSIONS_FILE)?.sessions)
    }

    /// One held session.
    pub fn session(&self, id: &str) -> Result<Option<HeldSession>, TrustedError> {
        Ok(self.sessions()?.remove(id))
    }

    /// Keeps `key` for the descriptor's session and key generation (sessions past their end are dropped).
    pub fn put_key(&self, d: &Descriptor, key: &SessionKey, now_ms: i64) -> Result<(), TrustedError> {
        self.update::<SessionsFile, _>(SESSIONS_FILE, |f| {
            f.sessions.retain(|_, s| s.expires_at > now_ms);
            let s = f.sessions.entry(d.session_id.clone()).or_insert_with(|| HeldSession {
                creator: d.creator.clone(),
                members: Vec::new(),
                expires_at: d.expires_at,
                keys: BTreeMap::new(),
                next_seq: 1,
                received: BTreeMap::new(),
            });
            if s.keys.keys().all(|e| *e <= d.epoch) {
                s.members = d.members.clone();
            }
            s.expires_at = d.expires_at;
            s.keys.insert(d.epoch, key.to_b64());
            while s.keys.len() > EPOCHS_KEPT {
                s.keys.pop_first();
            }
        })
    }

    /// Notes that this device's message `seq` was relayed in `session`.
    pub fn sent(&self, session: &str, seq: i64) -> Result<(), TrustedError> {
        self.update::<SessionsFile, _>(SESSIONS_FILE, |f| {
            if let Some(s) = f.sessions.get_mut(session) {
                s.next_seq = s.next_seq.max(seq + 1);
            }
        })
    }

    /// Notes that `sender`'s message `seq` was read in `session`.
    pub fn received(&self, session: &str, sender: &str, seq: i64) -> Result<(), TrustedError> {
        self.update::<SessionsFile, _>(SESSIONS_FILE, |f| {
            if let Some(s) = f.sessions.get_mut(session) {
                let last = s.received.entry(sender.to_string()).or_insert(0);
                *last = (*last).max(seq);
            }
        })
    }

    /// Where this device's channel was last read up to (0 when never).
    pub fn cursor(&self) -> Result<i64, TrustedError> {
        Ok(self.read::<SessionsFile>(SESSIONS_FILE)?.cursor)
    }

    /// Records where the channel was read up to (never moves back).
    pub fn set_cursor(&self, cursor: i64) -> Result<(), TrustedError> {
        self.update::<SessionsFile, _>(SESSIONS_FILE, |f| f.cursor = f.cursor.max(cursor))
    }

    /// Forgets a session (closed, left, or removed); whether it was held.
    pub fn forget_session(&self, id: &str) -> Result<bool, TrustedError> {
        let mut removed = false;
        self.update::<SessionsFile, _>(SESSIONS_FILE, |f| removed = f.sessions.remove(id).is_some())?;
        Ok(removed)
    }

    fn read<T: DeserializeOwned + Default>(&self, name: &str) -> Result<T, TrustedError> {
        let path = self.dir.join(name);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|_| TrustedError::Corrupt(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
            Err(e) => Err(TrustedError::Io { what: "cannot read", path, source: e }),
        }
    }

    /// Read, change and write one file under the lock.
    fn update<T: DeserializeOwned + Serialize + Default, F: FnOnce(&mut T)>(
        &self,
        name: &str,
        f: F,
    ) -> Result<(), TrustedError> {
        fs::create_dir_all(&self.dir).map_err(io("cannot create", &self.dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700));
        }
        let lock_path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io("cannot open", &lock_path))?;
        let mut lock = fd_lock::RwLock::new(file);
        let _guard = lock.write().map_err(io("cannot lock", &lock_path))?;
        let mut value: T = self.read(name)?;
        f(&mut value);
        let path = self.dir.join(name);
        let bytes = serde_json::to_vec_pretty(&value).map_err(|_| TrustedError::Corrupt(path.clone()))?;
        self.write_atomic(&path, &bytes)
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), TrustedError> {
        crate::profile::write_private(&self.dir, path, bytes).map_err(|f| TrustedError::Io {
            what: f.what,
            path: f.path,
            source: f.source,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use latchkey_domain::trust::PROTOCOL_VERSION;

    fn temp() -> TrustStore {
        TrustStore::new(std::env::temp_dir().join(format!("latchkey-trust-{}", uuid::Uuid::new_v4().simple())))
    }

    fn descriptor(epoch: u32, members: &[&str]) -> Descriptor {
        Descriptor {
            session_id: "s1".into(),
            creator: "a".into(),
            members: members.iter().map(|m| m.to_string()).collect(),
            epoch,
            protocol: PROTOCOL_VERSION,
            expires_at: 10_000,
        }
    }

    #[test]
    fn trusted_keys_are_kept_privately_and_can_be_removed() {
        let s = temp();
        assert_eq!(s.trusted_key("b").unwrap(), None);
        let k = PublicKey::from_bytes(&[7u8; 32]).unwrap();
        s.set_trusted("b", &k, "laptop", 5).unwrap();
        assert_eq!(s.trusted_key("b").unwrap(), Some(k));
        let k2 = PublicKey::from_bytes(&[8u8; 32]).unwrap();
        s.set_trusted("b", &k2, "", 6).unwrap();
        let t = s.trusted().unwrap();
        assert_eq!(t["b"].name, "laptop", "a rotation keeps the name");
        assert_eq!(t["b"].public_key().unwrap(), k2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(s.dir().join(TRUSTED_FILE)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert!(s.remove_trusted("b").unwrap());
        assert!(!s.remove_trusted("b").unwrap());
        assert_eq!(s.trusted_key("b").unwrap(), None);
        let _ = fs::remove_dir_all(s.dir());
    }

    #[test]
    fn session_keys_are_kept_per_epoch_with_the_send_counter() {
        let s = temp();
        let k1 = SessionKey::generate().unwrap();
        let k2 = SessionKey::generate().unwrap();
        s.put_key(&descriptor(1, &["a", "b", "c"]), &k1, 0).unwrap();
        assert_eq!(s.session("s1").unwrap().unwrap().next_seq, 1);
        s.sent("s1", 1).unwrap();
        s.sent("s1", 2).unwrap();
        s.put_key(&descriptor(2, &["a", "b"]), &k2, 0).unwrap();
        let held = s.session("s1").unwrap().unwrap();
        assert_eq!(held.next_seq, 3, "the counter runs on across key generations");
        assert_eq!(held.latest().unwrap(), Some((2, k2.clone())));
        assert_eq!(held.key(1).unwrap(), Some(k1.clone()));
        assert_eq!(held.members, vec!["a", "b"]);
        // A late key of an older generation does not roll the member list back.
        s.put_key(&descriptor(1, &["a", "b", "c"]), &k1, 0).unwrap();
        assert_eq!(s.session("s1").unwrap().unwrap().members, vec!["a", "b"]);
        for e in 3..10 {
            s.put_key(&descriptor(e, &["a", "b"]), &k2, 0).unwrap();
        }
        assert_eq!(s.session("s1").unwrap().unwrap().keys.len(), EPOCHS_KEPT);
        // Past its end, a session is dropped at the next write.
        let mut other = descriptor(1, &["a", "b"]);
        other.session_id = "s2".into();
        s.put_key(&other, &k1, 20_000).unwrap();
        assert_eq!(s.session("s1").unwrap(), None);
        assert!(s.forget_session("s2").unwrap());
        assert_eq!(s.cursor().unwrap(), 0);
        s.set_cursor(9).unwrap();
        s.set_cursor(4).unwrap();
        assert_eq!(s.cursor().unwrap(), 9, "the cursor never moves back");
        let _ = fs::remove_dir_all(s.dir());
    }

    #[test]
    fn a_damaged_file_is_reported() {
        let s = temp();
        fs::create_dir_all(s.dir()).unwrap();
        fs::write(s.dir().join(TRUSTED_FILE), b"{no").unwrap();
        assert!(matches!(s.trusted(), Err(TrustedError::Corrupt(_))));
        let _ = fs::remove_dir_all(s.dir());
    }
}
