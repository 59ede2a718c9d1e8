//! Checkpointing off the writer's commit path.
//!
//! In WAL mode every commit appends pages to the log, and a checkpoint copies
//! them back into the database file (and, with `synchronous=FULL`, fsyncs it).
//! SQLite's default runs that checkpoint inside whichever commit crosses 1,000
//! pages, so the one writer thread, and every operation queued behind it,
//! waits for it. Here a thread of its own, on its own connection, runs a
//! passive checkpoint after commits instead (at most every 100 ms); it never
//! blocks the writer.
//!
//! The writer keeps a far larger automatic threshold ([`WRITER_AUTOCHECKPOINT`])
//! as a backstop: under a sustained load the log only starts over from its
//! beginning when a checkpoint has copied all of it just before a transaction
//! begins, which the background thread alone may never catch. By the time the
//! backstop fires, the background thread has copied nearly everything, so the
//! writer's own checkpoint is short, and the log starts over.

use crate::db_err;
use latchkey_store::StoreError;
use rusqlite::Connection;
use std::sync::mpsc;
use std::time::Duration;

/// Pages in the log before the writer checkpoints itself (64 MiB of 4 KiB pages).
pub(crate) const WRITER_AUTOCHECKPOINT: u32 = 16_384;
/// Longest the background thread waits between checkpoints when nothing is committed.
const IDLE_CHECK: Duration = Duration::from_secs(5);
/// Shortest time between two checkpoints. Each one fsyncs the database file;
/// after every commit of a busy login load that would double the fsyncs the
/// disk sees, while one per 100 ms keeps the log small (a few MiB).
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Wakes the checkpoint thread after a commit. Cheap: a full queue means a wake-up is already pending.
#[derive(Clone)]
pub(crate) struct Checkpointer(mpsc::SyncSender<()>);

impl Checkpointer {
    /// Starts the thread on `conn` (a read-write connection to the same database).
    pub(crate) fn start(conn: Connection) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("latchkey-sqlite-checkpoint".into())
            .spawn(move || run(&conn, &rx))
            .map_err(|e| StoreError::Database(format!("cannot start the SQLite checkpointer: {e}")))?;
        Ok(Self(tx))
    }

    /// Asks for a checkpoint soon.
    pub(crate) fn committed(&self) {
        let _ = self.0.try_send(());
    }
}

/// Checkpoints after each wake-up (and now and then when idle) until the store is dropped.
fn run(conn: &Connection, rx: &mpsc::Receiver<()>) {
    loop {
        match rx.recv_timeout(IDLE_CHECK) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        // PASSIVE copies what no reader still needs and never waits for the writer.
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())).map_err(db_err) {
            tracing::warn!(error = %e, "SQLite checkpoint failed; the writer's own checkpoint will catch up");
        }
        // Commits in the meantime leave one wake-up waiting, taken next.
        std::thread::sleep(MIN_INTERVAL);
    }
}
