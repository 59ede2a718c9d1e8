//! The backend-independent conformance suite (`latchkey_store::testsuite`), run against SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use latchkey_store::{testsuite, Store};
use latchkey_store_sqlite::{Durability, SqliteStore};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

/// A fresh database in its own directory, removed afterwards even if the check fails.
struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("latchkey-conformance-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    /// A store on this fixture's database; call again for a second "replica".
    async fn store(&self) -> Arc<dyn Store> {
        // Normal durability: these databases are thrown away, fsyncs only slow the run.
        let store = Arc::new(SqliteStore::open(self.dir.join("latchkey.db"), Durability::Normal).await.unwrap());
        testsuite::unlock(store.as_ref()).await;
        store
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `check` on its own task so a failure still lets the fixture clean up, then re-raises it.
async fn run<F, Fut>(check: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let fixture = Fixture::new();
    let outcome = tokio::spawn(check(fixture.store().await)).await;
    drop(fixture);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                run(testsuite::$check).await;
            }
        )*
    };
}

latchkey_store::for_each_check!(conformance);

/// Runs a two-store check on two stores (two writers) over one database file.
async fn run_replicas<F, Fut>(check: F)
where
    F: FnOnce(Arc<dyn Store>, Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let fixture = Fixture::new();
    let (a, b) = (fixture.store().await, fixture.store().await);
    let outcome = tokio::spawn(check(a, b)).await;
    drop(fixture);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redeem_exactly_once_across_replicas() {
    run_replicas(testsuite::redeem_exactly_once_across_replicas).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn key_rotation_across_replicas() {
    run_replicas(testsuite::key_rotation_across_replicas).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn devices_across_replicas() {
    run_replicas(testsuite::devices_across_replicas).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pairing_collected_once_across_replicas() {
    run_replicas(testsuite::pairing_collected_once_across_replicas).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grant_for_unknown_app_is_not_a_conflict() {
    run(testsuite::grant_for_unknown_app_is_not_a_conflict).await;
}

/// A database that a newer Latchkey migrated is refused with a clear reason, never run on.
#[tokio::test]
async fn a_database_from_a_newer_latchkey_is_refused() {
    let f = Fixture::new();
    drop(f.store().await);
    let conn = rusqlite::Connection::open(f.dir.join("latchkey.db")).unwrap();
    conn.execute_batch("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)").unwrap();
    drop(conn);
    let e = SqliteStore::open(f.dir.join("latchkey.db"), Durability::Normal).await.err().expect("refused");
    assert!(matches!(e, latchkey_store::StoreError::NewerSchema { found: 999, .. }), "{e}");
    assert!(e.to_string().contains("newer Latchkey"), "{e}");
}
