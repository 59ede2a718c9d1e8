//! A small pool of read connections; WAL lets them read while the writer writes.

use crate::open_reader;
use latchkey_store::{StoreError, StoreResult};
use rusqlite::Connection;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Idle connections kept for reuse: as many as reads run at once under load,
/// so connections are not opened and closed continuously.
const MAX_IDLE: usize = 64;

pub(crate) struct Readers {
    path: PathBuf,
    idle: Arc<Mutex<Vec<Connection>>>,
}

impl Readers {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self { path, idle: Arc::default() }
    }

    /// Runs `f` on a read connection on the blocking pool.
    pub(crate) async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let idle = self.idle.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let taken = idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let conn = match taken {
                Some(c) => c,
                None => open_reader(&path)?,
            };
            let result = f(&conn);
            let mut pool = idle.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < MAX_IDLE {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Database(format!("read task failed: {e}")))?
    }
}
