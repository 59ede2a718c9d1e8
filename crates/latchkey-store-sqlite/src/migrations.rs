//! Embedded schema migrations, applied in order at start, each in its own transaction.

use crate::db_err;
use latchkey_store::StoreError;
use rusqlite::Connection;

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

/// Every migration version this build knows.
pub(crate) fn known_versions() -> Vec<i64> {
    MIGRATIONS.iter().map(|(v, _)| *v).collect()
}

pub(crate) fn run(conn: &mut Connection) -> Result<(), StoreError> {
    run_to(conn, i64::MAX)
}

/// Applies pending migrations up to `last` (tests start from an older schema).
fn run_to(conn: &mut Connection, last: i64) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .map_err(db_err)?;
    // A newer server's database: refuse rather than run on a schema this build does not know.
    let found: i64 =
        conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0)).map_err(db_err)?;
    let known = MIGRATIONS.iter().map(|(v, _)| *v).max().unwrap_or(0);
    if found > known {
        return Err(StoreError::NewerSchema { found, known });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v <= last) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db_err)?;
        let applied: bool = tx
            .query_row("SELECT EXISTS(SELECT 1 FROM schema_migrations WHERE version = ?1)", [version], |r| r.get(0))
            .map_err(db_err)?;
        if !applied {
            tracing::info!(version, "applying SQLite migration");
            tx.execute_batch(sql).map_err(db_err)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, unixepoch() * 1000)",
                [version],
            )
            .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)?;
    }
    Ok(())
}

#[cfg(test)]
// A broken promise fails the test, and panicking is how tests fail.
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// Registration reads only active devices and probes slugs: the plans use
    /// the partial index of active devices and the unique slug index, never a
    /// scan of every device the owner ever had.
    #[test]
    fn registration_queries_do_not_read_every_device() {
        let dir = std::env::temp_dir().join(format!("latchkey-plans-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut conn = crate::open_conn(&dir.join("db.sqlite"), crate::Durability::Full).unwrap();
        run(&mut conn).unwrap();
        let plan = |sql: &str, params: &[&str]| -> String {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| r.get::<_, String>(3)).unwrap();
            rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("; ")
        };
        use latchkey_store::sql;
        let count = plan(&sql::ACTIVE_DEVICE_COUNT.replace("$1", "?1"), &["u"]);
        assert!(count.contains("devices_active_owner"), "{count}");
        let keyed = plan(&sql::ACTIVE_DEVICE_WITH_KEY.replace("$1", "?1").replace("$2", "?2"), &["u", "k"]);
        assert!(keyed.contains("devices_active_owner"), "{keyed}");
        let probe = plan(&sql::SLUG_TAKEN.replace("$1", "?1").replace("$2", "?2"), &["u", "laptop"]);
        assert!(probe.contains("USING COVERING INDEX") && probe.contains("slug=?"), "{probe}");
        drop(conn);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Migration 9 rebuilds the events table: observers move into the row,
    /// parts stay, and deleting an event still takes its parts with it.
    #[test]
    fn observers_move_into_their_events_and_nothing_is_lost() {
        let dir = std::env::temp_dir().join(format!("latchkey-migration-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut conn = crate::open_conn(&dir.join("db.sqlite"), crate::Durability::Full).unwrap();
        run_to(&mut conn, 8).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, username, password_hash, is_admin, created_at) VALUES ('u1', 'ada', 'x', 0, 0);
             INSERT INTO events (id, user_id, client_id, kind, series, identity, start_at, end_at, created_at, seq)
                 VALUES ('e1', 'u1', 'cli', 'activity', 's1', '{}', 0, 10, 5, 1),
                        ('e2', 'u1', 'cli', 'note', 'e2', '{}', NULL, NULL, 5, 2);
             INSERT INTO event_observers (event_id, device_id, first_seen_at)
                 VALUES ('e1', 'laptop', 200), ('e1', 'desktop', 100), ('e2', 'phone', 300);
             INSERT INTO event_parts (event_id, device_id, start_at, end_at) VALUES ('e1', 'laptop', 0, 10);",
        )
        .unwrap();
        run(&mut conn).unwrap();
        let observers = |id: &str| -> String {
            conn.query_row("SELECT observers FROM events WHERE id = ?1", [id], |r| r.get(0)).unwrap()
        };
        let parsed = latchkey_store::rows::parse_observers(&observers("e1")).unwrap();
        let seen: Vec<(&str, i64)> = parsed.sightings().iter().map(|(d, at)| (d.as_str(), at.as_millis())).collect();
        assert_eq!(seen, [("desktop", 100), ("laptop", 200)]);
        assert_eq!(observers("e2"), r#"[["phone",300]]"#);
        let parts: i64 = conn.query_row("SELECT COUNT(*) FROM event_parts", [], |r| r.get(0)).unwrap();
        assert_eq!(parts, 1);
        conn.execute("DELETE FROM events WHERE id = 'e1'", []).unwrap();
        let parts: i64 = conn.query_row("SELECT COUNT(*) FROM event_parts", [], |r| r.get(0)).unwrap();
        assert_eq!(parts, 0, "the parts' foreign key follows the rebuilt table");
        let fk: i64 = conn.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| r.get(0)).unwrap();
        assert_eq!(fk, 0);
        drop(conn);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Migration 11: the old chain's entries keep their links, become the first
    /// leaves in `seq` order once sealed, and new entries number on after them.
    #[test]
    fn the_old_chain_becomes_the_first_leaves() {
        use latchkey_domain::audit::{AuditEvent, AuditKind, ChainHead, ChainVerifier};
        use latchkey_store::Store;
        let dir = std::env::temp_dir().join(format!("latchkey-migration-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("db.sqlite");
        let mut conn = crate::open_conn(&path, crate::Durability::Full).unwrap();
        run_to(&mut conn, 10).unwrap();
        let mut head = ChainHead::EMPTY;
        for i in 0..3 {
            let ev = AuditEvent::new(AuditKind::UserCreated, Some("system"), Some(&format!("u{i}")));
            let (e, h) = head.append(&ev, latchkey_domain::Timestamp::from_millis(i));
            let link = e.chain.unwrap();
            conn.execute(
                "INSERT INTO audit_log (seq, at, kind, actor, subject, detail, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                rusqlite::params![e.seq, i, e.kind, e.actor, e.subject, e.detail, &link.prev_hash[..], &link.hash[..]],
            )
            .unwrap();
            head = h;
        }
        conn.execute("UPDATE audit_head SET seq = ?1, hash = ?2", rusqlite::params![head.seq, &head.hash[..]]).unwrap();
        run(&mut conn).unwrap();
        drop(conn);

        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let store = crate::SqliteStore::open(&path, crate::Durability::Full).await.unwrap();
            latchkey_store::testsuite::unlock(&store).await;
            let t = latchkey_domain::Timestamp::from_millis(10);
            store.append_audit(AuditEvent::new(AuditKind::SignInFailed, None, None), t).await.unwrap();
            store.add_audit_key(latchkey_store::testsuite::test_audit_key(), false, "system".into(), t).await.unwrap();
            latchkey_store::testsuite::verify_audit_log(&store).await;
            let entries = store.audit_entries(0, 100).await.unwrap();
            let placed: Vec<(i64, Option<i64>, bool)> =
                entries.iter().map(|e| (e.seq, e.leaf, e.chain.is_some())).collect();
            assert_eq!(placed, [(1, Some(0), true), (2, Some(1), true), (3, Some(2), true), (4, Some(3), false)]);
            let mut chain = ChainVerifier::default();
            for e in &entries {
                chain.push(e).unwrap();
            }
            assert_eq!(chain.finish(store.audit_head().await.unwrap()).unwrap(), head);
        });
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Migration 13: keys an older Latchkey stored in plaintext are sealed in place
    /// at the first start with a secret key, all in one transaction; after it the
    /// columns hold envelopes, never the key material.
    #[test]
    fn plaintext_keys_are_sealed_in_one_transaction() {
        use latchkey_domain::audit::AuditKind;
        use latchkey_store::testsuite::{test_audit_key, test_secret_key};
        use latchkey_store::Store;
        let dir = std::env::temp_dir().join(format!("latchkey-migration-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("db.sqlite");
        let pkcs8 = b"0.PLAINTEXT-PKCS8-DOCUMENT-OF-A-SIGNING-KEY".to_vec();
        let audit = test_audit_key();
        let mut conn = crate::open_conn(&path, crate::Durability::Full).unwrap();
        run_to(&mut conn, 12).unwrap();
        conn.execute(
            "INSERT INTO signing_keys (kid, private_pkcs8, public_key, created_at) VALUES ('k1', ?1, ?2, 5)",
            rusqlite::params![pkcs8, vec![3u8; 32]],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO audit_keys (key_id, name, seed, created_at) VALUES (?1, ?2, ?3, 5)",
            rusqlite::params![i64::from(audit.key_id), audit.name, &audit.seed[..]],
        )
        .unwrap();
        run(&mut conn).unwrap();
        // A failure half-way (here: the audit key's update) must leave every key as it was.
        conn.execute_batch("CREATE TRIGGER refuse BEFORE UPDATE ON audit_keys BEGIN SELECT RAISE(ABORT, 'no'); END;")
            .unwrap();
        let raw = |conn: &Connection| -> (Vec<u8>, Vec<u8>, Option<String>) {
            let private = conn.query_row("SELECT private_sealed FROM signing_keys", [], |r| r.get(0)).unwrap();
            let seed = conn.query_row("SELECT seed_sealed FROM audit_keys", [], |r| r.get(0)).unwrap();
            let marker = conn.query_row("SELECT key_id FROM key_sealing", [], |r| r.get(0)).unwrap();
            (private, seed, marker)
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let store = crate::SqliteStore::open(&path, crate::Durability::Full).await.unwrap();
            let t = latchkey_domain::Timestamp::from_millis(10);
            assert_eq!(store.sealed_under().await.unwrap(), None);
            assert!(store.secure_keys(test_secret_key(), t).await.is_err());
            assert_eq!(raw(&conn), (pkcs8.clone(), audit.seed.to_vec(), None), "nothing changed");
            conn.execute_batch("DROP TRIGGER refuse").unwrap();

            let secured = store.secure_keys(test_secret_key(), t).await.unwrap();
            assert_eq!(secured.sealed_now, 2);
            let (private, seed, marker) = raw(&conn);
            assert_eq!(marker, Some(test_secret_key().id()));
            for sealed in [&private, &seed] {
                assert_eq!(&sealed[..4], b"LKK\x01");
            }
            assert!(!private.windows(pkcs8.len()).any(|w| w == pkcs8.as_slice()), "the PKCS#8 is not stored");
            assert!(!seed.windows(32).any(|w| w == audit.seed), "the seed is not stored");
            let keys = store.signing_keys().await.unwrap();
            assert_eq!(keys.len(), 1);
            assert_eq!(keys[0].private_pkcs8, pkcs8);
            assert_eq!(store.audit_keys().await.unwrap()[0].seed, audit.seed);
            let last = store.audit_entries(0, 10).await.unwrap().pop().unwrap();
            assert_eq!(last.kind, AuditKind::KeysEncrypted.as_str());
            assert_eq!(last.subject.as_deref(), Some(test_secret_key().id().as_str()));
            // A restart seals nothing more and records nothing more.
            assert_eq!(store.secure_keys(test_secret_key(), t).await.unwrap().sealed_now, 0);
            assert_eq!(store.audit_entries(0, 10).await.unwrap().len(), 1);
        });
        drop(conn);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
