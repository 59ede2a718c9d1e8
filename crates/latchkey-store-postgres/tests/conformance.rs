//! The backend-independent conformance suite (`latchkey_store::testsuite`), run against PostgreSQL.
//!
//! Runs only when `LATCHKEY_TEST_POSTGRES_URL` is set (e.g.
//! `postgres://postgres@127.0.0.1:5432/test`); each test gets its own schema,
//! so they run in parallel, and drops it afterwards. When the variable is set
//! but the database cannot be reached, the tests fail rather than pass unrun.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use latchkey_store::{testsuite, Store};
use latchkey_store_postgres::PgStore;
use std::future::Future;
use std::sync::Arc;

const URL_VAR: &str = "LATCHKEY_TEST_POSTGRES_URL";

/// A fresh schema on the test database.
struct Fixture {
    url: String,
    schema: String,
}

impl Fixture {
    /// `None` when no test database is configured.
    fn new() -> Option<Self> {
        let Ok(url) = std::env::var(URL_VAR) else {
            eprintln!("{URL_VAR} is not set; skipping the PostgreSQL conformance test");
            return None;
        };
        Some(Self { url, schema: format!("lk_test_{}", uuid::Uuid::new_v4().simple()) })
    }

    /// A store on this fixture's schema; call again for a second replica.
    async fn store(&self) -> Arc<dyn Store> {
        let store: Arc<dyn Store> = match PgStore::connect(&self.url, Some(&self.schema)).await {
            Ok(s) => Arc::new(s),
            Err(e) => panic!("{URL_VAR} is set but PostgreSQL cannot be used: {e}"),
        };
        testsuite::unlock(store.as_ref()).await;
        store
    }

    /// Drops the schema, then re-raises the check's failure if there was one.
    async fn finish(self, outcome: Result<(), tokio::task::JoinError>) {
        let dropped = PgStore::drop_schema(&self.url, &self.schema).await;
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
        dropped.unwrap();
    }
}

/// Runs `check` on its own task so a failure still lets the fixture clean up.
async fn run<F, Fut>(check: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(fixture) = Fixture::new() else {
        return;
    };
    let store = fixture.store().await;
    let outcome = tokio::spawn(check(store)).await;
    fixture.finish(outcome).await;
}

/// Like [`run`], with two stores (two pools, two listeners) on one schema.
async fn run_replicas<F, Fut>(check: F)
where
    F: FnOnce(Arc<dyn Store>, Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(fixture) = Fixture::new() else {
        return;
    };
    let (a, b) = (fixture.store().await, fixture.store().await);
    let outcome = tokio::spawn(check(a, b)).await;
    fixture.finish(outcome).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grant_for_unknown_app_is_not_a_conflict() {
    run(testsuite::grant_for_unknown_app_is_not_a_conflict).await;
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
async fn pairing_wakeup_across_replicas() {
    run_replicas(testsuite::pairing_wakeup_across_replicas).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wakeup_across_replicas() {
    run_replicas(testsuite::wakeup_across_replicas).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_migrating_at_once_agree() {
    let Some(fixture) = Fixture::new() else {
        return;
    };
    let stores = futures::future::join_all((0..4).map(|_| fixture.store())).await;
    let outcome = tokio::spawn(async move {
        assert_eq!(stores.len(), 4);
        for s in &stores {
            assert_eq!(s.count_users().await.unwrap(), 0);
        }
    })
    .await;
    fixture.finish(outcome).await;
}

#[tokio::test]
async fn unreachable_database_names_the_host_not_the_password() {
    if std::env::var(URL_VAR).is_err() {
        return;
    }
    // Port 1 on localhost refuses connections at once.
    let err = match PgStore::connect("postgres://latchkey:hunter2@127.0.0.1:1/nowhere", None).await {
        Ok(_) => panic!("connecting to a closed port succeeded"),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(matches!(err, latchkey_store::StoreError::Unavailable(_)), "{err:?}");
    assert!(text.contains("127.0.0.1:1/nowhere"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn missing_database_is_unavailable_and_named() {
    let Ok(url) = std::env::var(URL_VAR) else {
        return;
    };
    let Some(base) = url.rsplit_once('/').map(|(base, _)| base) else {
        panic!("{URL_VAR} has no database part: {url}")
    };
    let err = match PgStore::connect(&format!("{base}/latchkey_no_such_db"), None).await {
        Ok(_) => panic!("connecting to a missing database succeeded"),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(matches!(err, latchkey_store::StoreError::Unavailable(_)), "{err:?}");
    assert!(text.contains("/latchkey_no_such_db"), "{text}");
}

/// The backend pid of the listener connection of the store tagged `app`, if it is listening.
async fn listener_pid(admin: &tokio_postgres::Client, app: &str) -> Option<i32> {
    admin
        .query_opt("SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN %'", &[&app])
        .await
        .unwrap()
        .map(|r| r.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listener_reconnects_after_losing_its_connection() {
    let Some(fixture) = Fixture::new() else {
        return;
    };
    // Tag the listening store's connections so this test finds its own listener among parallel tests'.
    let app = fixture.schema.replace("lk_test_", "lk_listen_");
    let sep = if fixture.url.contains('?') { '&' } else { '?' };
    let tagged = format!("{}{sep}application_name={app}", fixture.url);
    let a = fixture.store().await;
    let b: Arc<dyn Store> = Arc::new(
        PgStore::connect(&tagged, Some(&fixture.schema))
            .await
            .unwrap_or_else(|e| panic!("{URL_VAR} is set but PostgreSQL cannot be used: {e}")),
    );
    let (admin, connection) = tokio_postgres::connect(&fixture.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let outcome = tokio::spawn(async move {
        let old = listener_pid(&admin, &app).await.expect("the listener is up");
        admin.execute("SELECT pg_terminate_backend($1)", &[&old]).await.unwrap();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match listener_pid(&admin, &app).await {
                Some(pid) if pid != old => break,
                _ if tokio::time::Instant::now() > deadline => {
                    panic!("the listener did not reconnect within 10 s")
                }
                _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
        testsuite::wakeup_across_replicas(a, b).await;
    })
    .await;
    fixture.finish(outcome).await;
}

/// A schema that a newer Latchkey migrated is refused with a clear reason, never run on.
#[tokio::test]
async fn a_database_from_a_newer_latchkey_is_refused() {
    let Some(f) = Fixture::new() else { return };
    let (url, schema) = (f.url.clone(), f.schema.clone());
    let outcome = tokio::spawn(async move {
        drop(PgStore::connect(&url, Some(&schema)).await.unwrap());
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        let sql = format!("INSERT INTO {schema}.schema_migrations (version, applied_at) VALUES (999, 0)");
        client.batch_execute(&sql).await.unwrap();
        let e = PgStore::connect(&url, Some(&schema)).await.err().expect("refused");
        assert!(matches!(e, latchkey_store::StoreError::NewerSchema { found: 999, .. }), "{e}");
    })
    .await;
    f.finish(outcome).await;
}

/// Migration 13 on PostgreSQL: keys left in plaintext (by a Latchkey before it) are
/// sealed in place by the first start with a secret key, in one transaction; the
/// columns then hold envelopes, never the key material.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plaintext_keys_are_sealed_in_one_transaction() {
    let Some(fixture) = Fixture::new() else {
        return;
    };
    let (url, schema) = (fixture.url.clone(), fixture.schema.clone());
    let outcome = tokio::spawn(async move {
        let store = PgStore::connect(&url, Some(&schema)).await.unwrap();
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client.batch_execute(&format!("SET search_path TO {schema}")).await.unwrap();
        let pkcs8 = b"0.PLAINTEXT-PKCS8-DOCUMENT-OF-A-SIGNING-KEY".to_vec();
        let audit = testsuite::test_audit_key();
        // What a database migrated from 12 holds: the same rows, plaintext, no key named.
        client
            .execute(
                "INSERT INTO signing_keys (kid, private_sealed, public_key, created_at) VALUES ('k1', $1, $2, 5)",
                &[&pkcs8, &vec![3u8; 32]],
            )
            .await
            .unwrap();
        client
            .execute(
                "INSERT INTO audit_keys (key_id, name, seed_sealed, created_at) VALUES ($1, $2, $3, 5)",
                &[&i64::from(audit.key_id), &audit.name, &&audit.seed[..]],
            )
            .await
            .unwrap();
        let raw = || async {
            let private: Vec<u8> =
                client.query_one("SELECT private_sealed FROM signing_keys", &[]).await.unwrap().get(0);
            let seed: Vec<u8> = client.query_one("SELECT seed_sealed FROM audit_keys", &[]).await.unwrap().get(0);
            let marker: Option<String> = client.query_one("SELECT key_id FROM key_sealing", &[]).await.unwrap().get(0);
            (private, seed, marker)
        };
        // A failure half-way (the audit key's update) leaves every key as it was.
        client
            .batch_execute(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no'; END $$;
                 CREATE TRIGGER refuse BEFORE UPDATE ON audit_keys FOR EACH ROW EXECUTE FUNCTION refuse();",
            )
            .await
            .unwrap();
        let t = latchkey_domain::Timestamp::from_millis(10);
        assert_eq!(store.sealed_under().await.unwrap(), None);
        assert!(store.secure_keys(testsuite::test_secret_key(), t).await.is_err());
        assert_eq!(raw().await, (pkcs8.clone(), audit.seed.to_vec(), None), "nothing changed");
        client.batch_execute("DROP TRIGGER refuse ON audit_keys").await.unwrap();

        let secured = store.secure_keys(testsuite::test_secret_key(), t).await.unwrap();
        assert_eq!(secured.sealed_now, 2);
        let (private, seed, marker) = raw().await;
        assert_eq!(marker, Some(testsuite::test_secret_key().id()));
        for sealed in [&private, &seed] {
            assert_eq!(&sealed[..4], b"LKK\x01");
        }
        assert!(!private.windows(pkcs8.len()).any(|w| w == pkcs8.as_slice()), "the PKCS#8 is not stored");
        assert!(!seed.windows(32).any(|w| w == audit.seed), "the seed is not stored");
        let keys = store.signing_keys().await.unwrap();
        assert_eq!(keys[0].private_pkcs8, pkcs8);
        assert_eq!(store.audit_keys().await.unwrap()[0].seed, audit.seed);
        let last = store.audit_entries(0, 10).await.unwrap().pop().unwrap();
        assert_eq!(last.kind, "keys.encrypted");
        assert_eq!(store.secure_keys(testsuite::test_secret_key(), t).await.unwrap().sealed_now, 0);
    })
    .await;
    fixture.finish(outcome).await;
}
