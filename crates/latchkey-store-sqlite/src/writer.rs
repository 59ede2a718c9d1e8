//! The one write connection, on its own thread, committing queued operations in batches.

use crate::checkpoint::Checkpointer;
use crate::db_err;
use latchkey_store::{StoreError, StoreResult};
use rusqlite::Connection;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Most operations committed in one transaction; bounds latency under a flood.
const MAX_BATCH: usize = 512;

trait Job: Send {
    /// Runs inside the batch; returns whether its changes should be kept.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Delivers the result once the batch's fate is known.
    fn finish(self: Box<Self>, commit: Result<(), &StoreError>);
}

struct Op<T, F> {
    f: Option<F>,
    result: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T: Send, F: FnOnce(&Connection) -> StoreResult<T> + Send> Job for Op<T, F> {
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(f) = self.f.take() else { return false };
        // A panicking operation must not take the writer (and every later write) down with it.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)))
            .unwrap_or_else(|_| Err(StoreError::Database("a storage operation panicked; it was rolled back".into())));
        let keep = r.is_ok();
        self.result = Some(r);
        keep
    }

    fn finish(self: Box<Self>, commit: Result<(), &StoreError>) {
        let result = match (commit, self.result) {
            (Ok(()), Some(r)) => r,
            (Err(e), _) => Err(StoreError::Unavailable(format!("commit failed: {e}"))),
            (Ok(()), None) => Err(StoreError::Database("operation did not run".into())),
        };
        // The caller may have gone away (client disconnected); nothing to do then.
        let _ = self.reply.send(result);
    }
}

/// Handle to the writer thread.
pub(crate) struct Writer {
    tx: mpsc::Sender<Box<dyn Job>>,
    counters: Arc<Counters>,
}

/// The writer's load, kept as it runs (read by metrics).
#[derive(Default)]
pub(crate) struct Counters {
    /// Operations sent and not yet taken into a batch.
    queued: AtomicU64,
    /// Batches committed.
    commits: AtomicU64,
    /// Time spent running and committing batches, in microseconds.
    commit_micros: AtomicU64,
}

impl Writer {
    /// Starts the writer on `conn`, waking `checkpointer` after each commit.
    pub(crate) fn start(conn: Connection, checkpointer: Checkpointer) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        std::thread::Builder::new()
            .name("latchkey-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, &c, &checkpointer))
            .map_err(|e| StoreError::Database(format!("cannot start the SQLite writer: {e}")))?;
        Ok(Self { tx, counters })
    }

    /// Operations waiting, batches committed, and the seconds the batches took.
    pub(crate) fn load(&self) -> (u64, u64, f64) {
        let c = &self.counters;
        let secs = c.commit_micros.load(Ordering::Relaxed) as f64 / 1e6;
        (c.queued.load(Ordering::Relaxed), c.commits.load(Ordering::Relaxed), secs)
    }

    /// Runs `f` in the next batch and returns its result after the batch commits.
    pub(crate) async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Op { f: Some(f), result: None, reply });
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        self.tx.send(job).map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?;
        rx.await.map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?
    }
}

fn writer_loop(conn: Connection, rx: mpsc::Receiver<Box<dyn Job>>, counters: &Counters, checkpointer: &Checkpointer) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    // Blocks until work arrives; ends when every sender (the store) is dropped.
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        counters.queued.fetch_sub(batch.len() as u64, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let commit = run_batch(&conn, &mut batch);
        let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        counters.commits.fetch_add(1, Ordering::Relaxed);
        counters.commit_micros.fetch_add(took, Ordering::Relaxed);
        match &commit {
            Ok(()) => checkpointer.committed(),
            Err(e) => tracing::error!(error = %e, ops = batch.len(), "SQLite batch failed"),
        }
        for job in batch.drain(..) {
            job.finish(commit.as_ref().map(|_| ()));
        }
    }
}

fn run_batch(conn: &Connection, batch: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(db_err)?;
    if let [job] = batch {
        // Alone in its batch, an operation needs no savepoint: the transaction
        // is one, and a savepoint would copy every page it changes first.
        if job.run(conn) {
            return commit(conn);
        }
        // Its own error reaches it; nothing it did is kept.
        return conn.execute_batch("ROLLBACK").map_err(db_err);
    }
    for job in batch.iter_mut() {
        let step = conn
            .execute_batch("SAVEPOINT op")
            .and_then(|_| {
                let keep = job.run(conn);
                if keep {
                    conn.execute_batch("RELEASE op")
                } else {
                    conn.execute_batch("ROLLBACK TO op; RELEASE op")
                }
            })
            .map_err(db_err);
        if let Err(e) = step {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    commit(conn)
}

fn commit(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch("COMMIT").map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        db_err(e)
    })
}
