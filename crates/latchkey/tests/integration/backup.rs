//! `latchkey admin backup|restore` (SQLite), with the real binary against a running server:
//! a backup taken while device logins go on restores into a server that honours old tokens.

use crate::support::*;
use latchkey_store_sqlite::{Durability, SqliteStore};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// `latchkey admin --data-dir DIR ARGS…`: (success, stdout, stderr).
async fn admin(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .env_remove("LATCHKEY_DATABASE")
        .env_remove("LATCHKEY_CONFIG")
        // The data directories are test servers', unlocked with the test key.
        .env("LATCHKEY_SECRET_KEY", &*test_secret_key().to_text())
        .env("LATCHKEY_LOG", "warn")
        .arg("admin")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("run latchkey");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn temp_path(what: &str) -> PathBuf {
    std::env::temp_dir().join(format!("latchkey-{what}-{}", uuid::Uuid::new_v4().simple()))
}

/// Removes a path when dropped.
struct Cleanup(PathBuf);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_into_a_server_that_honours_old_tokens() {
    let app = Arc::new(spawn_app(Backend::Sqlite).await);
    let data_dir = app.sqlite_dir().expect("a SQLite server").to_path_buf();
    let before = app.login("alice", "openid profile").await;
    let refresh = before.refresh_token.clone().expect("a refresh token");
    let alice = app.client.userinfo(&before.access_token).await.expect("userinfo before the backup");

    // Load: device logins of new users, one after another on two tasks, all through the backup.
    let stop = Arc::new(AtomicBool::new(false));
    let done: Arc<[AtomicUsize; 2]> = Arc::new(Default::default());
    let total = |d: &[AtomicUsize; 2]| d.iter().map(|n| n.load(Ordering::Relaxed)).sum::<usize>();
    let load: Vec<_> = (0..2)
        .map(|t| {
            let (app, stop, done) = (app.clone(), stop.clone(), done.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let tokens = app.login(&format!("load-{t}-{i}"), "openid").await;
                    app.client.userinfo(&tokens.access_token).await.expect("a token of the load works");
                    done[t].fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    while done.iter().any(|n| n.load(Ordering::Relaxed) == 0) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let backup_file = temp_path("backup");
    let _cleanup_backup = Cleanup(backup_file.clone());
    let (ok, out, err) = admin(&data_dir, &["backup", backup_file.to_str().expect("utf-8 path")]).await;
    assert!(ok, "backup failed: {out}{err}");
    assert!(out.contains("Backed up") && out.contains("integrity checked"), "{out}");
    let during = total(&done);
    // Let the load run on a little past the backup, then stop it.
    while total(&done) < during + 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.expect("load task");
    }
    // A backup never overwrites.
    let (ok, _, err) = admin(&data_dir, &["backup", backup_file.to_str().expect("utf-8 path")]).await;
    assert!(!ok && err.contains("already exists"), "{err}");

    // Restoring refuses a directory that has a database…
    let (ok, _, err) = admin(&data_dir, &["restore", backup_file.to_str().expect("utf-8 path")]).await;
    assert!(!ok && err.contains("restore into an empty --data-dir; move the old one away first"), "{err}");
    // …and fills an empty one.
    let restored_dir = temp_path("restored");
    let _cleanup_restored = Cleanup(restored_dir.clone());
    let (ok, out, err) = admin(&restored_dir, &["restore", backup_file.to_str().expect("utf-8 path")]).await;
    assert!(ok, "restore failed: {out}{err}");
    // The newest schema this build has: one migration file per version.
    let migrations = concat!(env!("CARGO_MANIFEST_DIR"), "/../latchkey-store-sqlite/migrations");
    let latest = std::fs::read_dir(migrations).expect("migrations").count();
    assert!(out.contains(&format!("schema version {latest},")), "{out}");
    let (ok, out, err) = admin(&restored_dir, &["audit", "verify"]).await;
    assert!(ok && out.contains("audit log intact"), "the restored audit log: {out}{err}");

    // A server on the restored copy, at the same public URL (the tokens' issuer).
    let issuer = app.url.clone();
    let restored = spawn_app_on_sqlite_dir(restored_dir.clone(), move |c| c.public_url = issuer).await;
    restored.sealed().await;
    let report = restored.verify_audit(vec![]).await;
    assert!(report.broken.is_empty(), "restored log intact: {:?}", report.broken);
    assert!(report.size > 10, "the log holds the logins before the backup: {}", report.size);
    // The access token issued before the backup still works there.
    let info = restored.client.userinfo(&before.access_token).await.expect("userinfo on the restored server");
    assert_eq!(info, alice);
    assert!(restored.client.introspect(&device_app(), &before.access_token).await.expect("introspect").active);
    // And so does the refresh token, once.
    let next = restored.client.refresh(&device_app(), &refresh).await.expect("refresh on the restored server");
    assert_eq!(restored.client.userinfo(&next.access_token).await.expect("new token").sub, alice.sub);
    // The users that existed when the backup began are all there.
    assert!(restored.store.user_by_name("load-0-0").await.expect("lookup").is_some());
    assert!(restored.store.user_by_name("load-1-0").await.expect("lookup").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_what_is_not_a_latchkey_backup_and_backup_refuses_postgres() {
    let junk = temp_path("junk");
    let _c = Cleanup(junk.clone());
    std::fs::write(&junk, "not a database").expect("write");
    let dir = temp_path("restored");
    let _d = Cleanup(dir.clone());
    let (ok, _, err) = admin(&dir, &["restore", junk.to_str().expect("utf-8")]).await;
    assert!(!ok && err.contains("not a database"), "{err}");
    assert!(!dir.join("latchkey.sqlite3").exists(), "nothing is left behind");

    // An SQLite file that is not Latchkey's.
    let other = temp_path("other");
    let _o = Cleanup(other.clone());
    rusqlite::Connection::open(&other).expect("open").execute_batch("CREATE TABLE t (x)").expect("create");
    let (ok, _, err) = admin(&dir, &["restore", other.to_str().expect("utf-8")]).await;
    assert!(!ok && err.contains("not a Latchkey database"), "{err}");

    // A backup from a newer Latchkey, with a migration this one does not know.
    let newer = temp_path("newer");
    let _n = Cleanup(newer.clone());
    std::fs::create_dir_all(&newer).expect("dir");
    drop(SqliteStore::open(newer.join("latchkey.sqlite3"), Durability::Normal).await.expect("open"));
    let newer_backup = newer.join("backup.sqlite3");
    let (ok, out, err) = admin(&newer, &["backup", newer_backup.to_str().expect("utf-8")]).await;
    assert!(ok, "{out}{err}");
    rusqlite::Connection::open(&newer_backup)
        .expect("open")
        .execute_batch("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)")
        .expect("a future migration");
    let (ok, _, err) = admin(&dir, &["restore", newer_backup.to_str().expect("utf-8")]).await;
    assert!(!ok && err.contains("schema migration 999") && err.contains("does not know"), "{err}");
    assert!(!dir.join("latchkey.sqlite3").exists(), "nothing is left behind");

    let (ok, _, err) = admin(&dir, &["backup", "x.db"]).await;
    assert!(!ok && err.contains("there is no database"), "{err}");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["admin", "--database", "postgres://nobody@127.0.0.1:1/none", "backup", "x.db"])
        .env("LATCHKEY_LOG", "warn")
        .output()
        .await
        .expect("run latchkey");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("pg_dump") && err.contains("pg_restore"), "{err}");
}
