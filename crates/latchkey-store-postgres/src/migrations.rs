//! Embedded schema migrations, applied at connect under an advisory lock so
//! replicas starting together neither race nor apply a migration twice.

use crate::db::{DbResult, Tx};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_foundation.sql")),
    (2, include_str!("../migrations/0002_devices.sql")),
    (3, include_str!("../migrations/0003_qr_sign_in.sql")),
    (4, include_str!("../migrations/0004_accounts.sql")),
    (5, include_str!("../migrations/0005_sign_in_lockout.sql")),
    (6, include_str!("../migrations/0006_sign_ins.sql")),
    (7, include_str!("../migrations/0007_events.sql")),
    (8, include_str!("../migrations/0008_trusted_sessions.sql")),
    (9, include_str!("../migrations/0009_observers_in_the_event.sql")),
    (10, include_str!("../migrations/0010_active_devices.sql")),
    (11, include_str!("../migrations/0011_audit_tree.sql")),
    (12, include_str!("../migrations/0012_web_sign_in.sql")),
    (13, include_str!("../migrations/0013_keys_at_rest.sql")),
    (14, include_str!("../migrations/0014_passkeys.sql")),
    (15, include_str!("../migrations/0015_rsa_id_tokens.sql")),
];

/// Advisory-lock class for migrations; the second key is the schema's hash,
/// so separate schemas (tests, tenants) migrate without waiting on each other.
const LOCK_CLASS: i32 = 0x4c4b_4d47; // "LKMG"

/// Creates `schema` if asked and applies pending migrations, all in the caller's transaction.
pub(crate) async fn run(tx: &Tx<'_>, schema: Option<&str>) -> DbResult<()> {
    let key = schema.unwrap_or("public");
    tx.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", &[&LOCK_CLASS, &key]).await?;
    if let Some(schema) = schema {
        // `schema` passed `db::check_schema`, so it needs no quoting.
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")).await?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .await?;
    // A newer server's database: refuse rather than run on a schema this build does not know.
    let found: i64 = tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).await?.get(0);
    let known = MIGRATIONS.iter().map(|(v, _)| *v).max().unwrap_or(0);
    if found > known {
        return Err(latchkey_store::StoreError::NewerSchema { found, known }.into());
    }
    for (version, sql) in MIGRATIONS {
        let applied = tx.query_opt("SELECT 1 FROM schema_migrations WHERE version = $1", &[version]).await?.is_some();
        if !applied {
            tracing::info!(version, schema = key, "applying PostgreSQL migration");
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at)
                 VALUES ($1, (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT)",
                &[version],
            )
            .await?;
        }
    }
    Ok(())
}
