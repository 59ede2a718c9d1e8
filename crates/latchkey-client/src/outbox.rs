//! The outbox: captured events waiting to be sent, in a SQLite file (one per profile).
//!
//! [`Outbox::add`] returns only once the captures are on disk (WAL, `synchronous=FULL`):
//! a capture it returned for survives a crash or a power loss. [`Outbox::flush`] sends
//! the oldest captures first, in the order they were added, and deletes exactly the rows
//! of a batch after the server answered for them; captures the server rejected are
//! deleted too (they would never succeed) and handed back with the reason.
//!
//! A flush cut short (crash, kill, lost connection) leaves the unanswered batch queued,
//! and the next flush sends it again. That is safe because the server's ingest is
//! idempotent: it stores each event once by its canonical ID, so nothing is lost and
//! nothing is stored twice. Two flushes of one outbox at once are just as safe; the
//! second reports what the first sent as duplicates.

use crate::{Auth, Client, ClientError};
use latchkey_proto::api::Capture;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The most captures the server takes in one batch.
pub const MAX_BATCH: usize = 1000;

/// The file format this code writes (`PRAGMA user_version`).
const FORMAT: i64 = 1;

/// How long to wait for another process holding the file's write lock.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Why the outbox could not be used.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The SQLite file could not be opened, read or written.
    #[error("outbox {path}: {source}")]
    Db {
        /// The file.
        path: PathBuf,
        /// The error.
        source: rusqlite::Error,
    },
    /// The directory or file could not be created.
    #[error("outbox {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file was written by a newer version of this library.
    #[error(
        "the outbox {path} is in format {found}, newer than this latchkey understands ({FORMAT}); upgrade latchkey"
    )]
    NewerFormat {
        /// The file.
        path: PathBuf,
        /// Its format.
        found: i64,
    },
    /// A queued row does not parse as a capture.
    #[error("the outbox {path} holds a damaged capture (row {row}): {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// The row's sequence number.
        row: i64,
        /// What is wrong with it.
        reason: String,
    },
    /// The outbox holds another account's captures, which must not be sent as this one.
    #[error("the outbox {path} holds {pending} captures of {stored}, not of {asked}; send them as {stored} first")]
    OtherOwner {
        /// The file.
        path: PathBuf,
        /// Whose captures are queued.
        stored: String,
        /// Who asked.
        asked: String,
        /// How many are queued.
        pending: usize,
    },
    /// Talking to the server failed; the batch stays queued.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The blocking database task did not finish.
    #[error("the outbox task failed: {0}")]
    Task(String),
}

/// What a flush did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlushReport {
    /// Captures that became new events.
    pub created: usize,
    /// Captures of events the server already had.
    pub duplicate: usize,
    /// Captures merged into an existing event (interval kinds).
    pub merged: usize,
    /// Captures the server refused, with its reason; they were removed from the outbox.
    pub rejected: Vec<(Capture, String)>,
}

impl FlushReport {
    /// How many captures the server answered for.
    pub fn total(&self) -> usize {
        self.created + self.duplicate + self.merged + self.rejected.len()
    }

    /// Adds another report's counts to this one.
    pub fn absorb(&mut self, other: FlushReport) {
        self.created += other.created;
        self.duplicate += other.duplicate;
        self.merged += other.merged;
        self.rejected.extend(other.rejected);
    }
}

/// A durable queue of captures, oldest first.
#[derive(Debug, Clone)]
pub struct Outbox {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
    /// The largest batch the server took without answering 413 (shrinks when it does).
    batch_cap: Arc<AtomicUsize>,
}

impl Outbox {
    /// Opens (creating if needed) the outbox at `path`, with the durability the queue promises.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OutboxError> {
        let path = path.as_ref().to_path_buf();
        let created = create_private(&path)?;
        let db = |source| OutboxError::Db { path: path.clone(), source };
        let conn = Connection::open(&path).map_err(db)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(db)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(db(rusqlite::Error::InvalidQuery));
        }
        // FULL, not NORMAL: in WAL mode NORMAL may lose the last commits on power loss.
        conn.pragma_update(None, "synchronous", "FULL").map_err(db)?;
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(db)?;
        if found > FORMAT {
            return Err(OutboxError::NewerFormat { path, found });
        }
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS outbox (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 capture TEXT NOT NULL,
                 added_at_ms INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             PRAGMA user_version = 1;",
        )
        .map_err(db)?;
        if created {
            sync_parent(&path);
        }
        Ok(Self { path, conn: Arc::new(Mutex::new(conn)), batch_cap: Arc::new(AtomicUsize::new(MAX_BATCH)) })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db(&self) -> impl Fn(rusqlite::Error) -> OutboxError + '_ {
        |source| OutboxError::Db { path: self.path.clone(), source }
    }

    /// Runs `f` on the connection; a panic elsewhere never makes the outbox unusable.
    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, OutboxError>) -> Result<T, OutboxError> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut conn)
    }

    /// Runs `f` on the connection on tokio's blocking pool (commits wait for fsync).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Outbox) -> Result<T, OutboxError> + Send + 'static,
    ) -> Result<T, OutboxError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this)).await.map_err(|e| OutboxError::Task(e.to_string()))?
    }

    /// Marks the outbox as `owner`'s (e.g. user and server). Refused while it holds another
    /// owner's captures, so nothing captured as one account is ever sent as another.
    pub fn claim(&self, owner: &str) -> Result<(), OutboxError> {
        self.with_conn(|conn| {
            let db = self.db();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&db)?;
            let stored: Option<String> =
                tx.query_row("SELECT value FROM meta WHERE key = 'owner'", [], |r| r.get(0)).optional().map_err(&db)?;
            if stored.as_deref() == Some(owner) {
                return Ok(());
            }
            let pending = count(&tx).map_err(&db)?;
            if let (Some(stored), true) = (stored, pending > 0) {
                return Err(OutboxError::OtherOwner {
                    path: self.path.clone(),
                    stored,
                    asked: owner.to_string(),
                    pending,
                });
            }
            tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('owner', ?1)", [owner]).map_err(&db)?;
            tx.commit().map_err(&db)
        })
    }

    /// Queues `captures` in one transaction; when this returns, they are on disk. Returns how many were queued.
    pub fn add(&self, captures: &[Capture]) -> Result<usize, OutboxError> {
        let rows = captures
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| OutboxError::Task(e.to_string()))?;
        let now = crate::profile::now_ms();
        self.with_conn(|conn| {
            let db = self.db();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&db)?;
            {
                let mut insert =
                    tx.prepare("INSERT INTO outbox (capture, added_at_ms) VALUES (?1, ?2)").map_err(&db)?;
                for row in &rows {
                    insert.execute(params![row, now]).map_err(&db)?;
                }
            }
            tx.commit().map_err(&db)?;
            Ok(rows.len())
        })
    }

    /// How many captures wait to be sent.
    pub fn pending(&self) -> Result<usize, OutboxError> {
        self.with_conn(|conn| count(conn).map_err(self.db()))
    }

    /// The oldest `limit` queued captures with their row numbers, in the order they were added.
    pub fn oldest(&self, limit: usize) -> Result<Vec<(i64, Capture)>, OutboxError> {
        self.with_conn(|conn| {
            let db = self.db();
            let mut stmt = conn.prepare("SELECT seq, capture FROM outbox ORDER BY seq LIMIT ?1").map_err(&db)?;
            let rows = stmt
                .query_map([limit as i64], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                .map_err(&db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(&db)?;
            rows.into_iter()
                .map(|(row, text)| match serde_json::from_str(&text) {
                    Ok(c) => Ok((row, c)),
                    Err(e) => Err(OutboxError::Damaged { path: self.path.clone(), row, reason: e.to_string() }),
                })
                .collect()
        })
    }

    /// Deletes exactly the rows `rows` (those the server answered for), in one transaction.
    fn remove(&self, rows: &[i64]) -> Result<(), OutboxError> {
        self.with_conn(|conn| {
            let db = self.db();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&db)?;
            {
                let mut delete = tx.prepare("DELETE FROM outbox WHERE seq = ?1").map_err(&db)?;
                for row in rows {
                    delete.execute([row]).map_err(&db)?;
                }
            }
            tx.commit().map_err(&db)
        })
    }

    /// Sends everything queued, oldest first, in batches of at most `batch` (and [`MAX_BATCH`]),
    /// until the outbox is empty. On an error the batch in flight stays queued for the next flush;
    /// batches answered before it are gone from the outbox (use [`Outbox::flush_once`] to see
    /// each batch's report as it goes).
    pub async fn flush<'a>(
        &self,
        client: &Client,
        auth: impl Into<Auth<'a>>,
        batch: usize,
    ) -> Result<FlushReport, OutboxError> {
        let auth = auth.into();
        let mut report = FlushReport::default();
        while let Some(r) = self.flush_once(client, auth, batch).await? {
            report.absorb(r);
        }
        Ok(report)
    }

    /// Sends the oldest batch of at most `batch` captures and removes it once the server answered;
    /// `None` when the outbox is empty. A batch the server finds too large (413) is halved and
    /// sent again; a single capture it finds too large is rejected.
    pub async fn flush_once<'a>(
        &self,
        client: &Client,
        auth: impl Into<Auth<'a>>,
        batch: usize,
    ) -> Result<Option<FlushReport>, OutboxError> {
        let auth = auth.into();
        let mut size = batch.clamp(1, MAX_BATCH).min(self.batch_cap.load(Ordering::Relaxed)).max(1);
        loop {
            let rows = self.blocking(move |o| o.oldest(size)).await?;
            if rows.is_empty() {
                return Ok(None);
            }
            let (seqs, captures): (Vec<i64>, Vec<Capture>) = rows.into_iter().unzip();
            let answer = client.push_events(auth, &captures).await;
            let report = match answer {
                Ok(resp) => tally(captures, resp.results)?,
                Err(e) if e.status() == Some(413) && captures.len() > 1 => {
                    size = captures.len() / 2;
                    self.batch_cap.store(size, Ordering::Relaxed);
                    continue;
                }
                Err(e) if e.status() == Some(413) => {
                    let reason = match &e {
                        ClientError::Server { description: Some(d), .. } => format!("too large: {d}"),
                        _ => "too large for the server".into(),
                    };
                    FlushReport {
                        rejected: captures.into_iter().map(|c| (c, reason.clone())).collect(),
                        ..Default::default()
                    }
                }
                Err(e) => return Err(e.into()),
            };
            self.blocking(move |o| o.remove(&seqs)).await?;
            return Ok(Some(report));
        }
    }
}

/// What the server's answer to one batch says, checked before anything is removed.
fn tally(captures: Vec<Capture>, results: Vec<latchkey_proto::api::IngestResult>) -> Result<FlushReport, OutboxError> {
    if results.len() != captures.len() {
        return Err(ClientError::Protocol(format!(
            "the server answered {} results for {} captures",
            results.len(),
            captures.len()
        ))
        .into());
    }
    let mut report = FlushReport::default();
    for (capture, result) in captures.into_iter().zip(results) {
        match result.status.as_str() {
            "created" => report.created += 1,
            "duplicate" => report.duplicate += 1,
            "merged" => report.merged += 1,
            "rejected" => {
                report.rejected.push((capture, result.reason.unwrap_or_else(|| "no reason given".into())));
            }
            other => {
                return Err(ClientError::Protocol(format!("unknown ingest status {other:?}")).into());
            }
        }
    }
    Ok(report)
}

fn count(conn: &Connection) -> rusqlite::Result<usize> {
    conn.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get::<_, i64>(0)).map(|n| n.max(0) as usize)
}

/// Creates the file (mode 0600: captures are private) and its directory if missing; says whether it was new.
fn create_private(path: &Path) -> Result<bool, OutboxError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OutboxError::Io { path, source }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(io(path)(e)),
    }
}

/// Makes a new file's directory entry durable (SQLite syncs the file, not the directory).
fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use latchkey_proto::api::{IngestRequest, IngestResponse, IngestResult};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    struct Temp(PathBuf);

    impl Temp {
        fn new() -> Self {
            Temp(std::env::temp_dir().join(format!("latchkey-outbox-{}", uuid::Uuid::new_v4().simple())))
        }
        fn file(&self) -> PathBuf {
            self.0.join("outbox.sqlite3")
        }
    }

    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn capture(n: usize) -> Capture {
        let mut identity = serde_json::Map::new();
        identity.insert("n".into(), n.into());
        Capture { kind: "ping".into(), identity, start: None, end: None, id: None }
    }

    fn numbers(captures: &[Capture]) -> Vec<u64> {
        captures.iter().map(|c| c.identity["n"].as_u64().unwrap()).collect()
    }

    fn queued(o: &Outbox) -> Vec<u64> {
        numbers(&o.oldest(usize::MAX >> 1).unwrap().into_iter().map(|r| r.1).collect::<Vec<_>>())
    }

    /// A fake server: answers each `POST /api/v1/events` with what `answer` says, and
    /// remembers every batch it received.
    struct Fake {
        url: String,
        batches: Arc<Mutex<Vec<Vec<Capture>>>>,
    }

    type Answer = dyn Fn(usize, &[Capture]) -> (u16, String) + Send + Sync;

    fn ok(captures: &[Capture], status: impl Fn(u64) -> &'static str) -> (u16, String) {
        let results = numbers(captures)
            .into_iter()
            .map(|n| {
                let s = status(n);
                IngestResult {
                    status: s.into(),
                    id: (s != "rejected").then(|| format!("ev-{n}")),
                    reason: (s == "rejected").then(|| format!("no kind for {n}")),
                }
            })
            .collect();
        (200, serde_json::to_string(&IngestResponse { results }).unwrap())
    }

    async fn fake(answer: impl Fn(usize, &[Capture]) -> (u16, String) + Send + Sync + 'static) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let batches = Arc::new(Mutex::new(Vec::new()));
        let answer: Arc<Answer> = Arc::new(answer);
        let seen = batches.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (answer, seen) = (answer.clone(), seen.clone());
                tokio::spawn(async move {
                    let (read, mut write) = sock.into_split();
                    let mut read = BufReader::new(read);
                    loop {
                        let mut length = 0usize;
                        let mut line = String::new();
                        loop {
                            line.clear();
                            if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if line == "\r\n" {
                                break;
                            }
                            if let Some((k, v)) = line.split_once(':') {
                                if k.eq_ignore_ascii_case("content-length") {
                                    length = v.trim().parse().unwrap();
                                }
                            }
                        }
                        let mut body = vec![0; length];
                        read.read_exact(&mut body).await.unwrap();
                        let req: IngestRequest = serde_json::from_slice(&body).unwrap();
                        let n = {
                            let mut s = seen.lock().unwrap();
                            s.push(req.events.clone());
                            s.len()
                        };
                        let (status, body) = answer(n, &req.events);
                        let head = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                            body.len()
                        );
                        if write.write_all(format!("{head}{body}").as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Fake { url, batches }
    }

    impl Fake {
        fn client(&self) -> Client {
            Client::new(&self.url).unwrap()
        }
        fn batches(&self) -> Vec<Vec<u64>> {
            self.batches.lock().unwrap().iter().map(|b| numbers(b)).collect()
        }
    }

    #[test]
    fn queued_captures_survive_reopening_in_order() {
        let t = Temp::new();
        {
            let o = Outbox::open(t.file()).unwrap();
            assert_eq!(o.add(&[capture(1), capture(2)]).unwrap(), 2);
            assert_eq!(o.add(&[capture(3)]).unwrap(), 1);
            assert_eq!(o.add(&[]).unwrap(), 0);
        }
        let o = Outbox::open(t.file()).unwrap();
        assert_eq!(o.pending().unwrap(), 3);
        assert_eq!(queued(&o), vec![1, 2, 3]);
        let got = o.oldest(1).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, capture(1), "captures come back exactly as added");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(t.file()).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn the_file_is_durable_and_refuses_newer_formats() {
        let t = Temp::new();
        let o = Outbox::open(t.file()).unwrap();
        o.with_conn(|c| {
            let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
            let sync: i64 = c.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
            assert_eq!((mode.as_str(), sync), ("wal", 2), "WAL with synchronous=FULL");
            c.execute_batch("PRAGMA user_version = 99").unwrap();
            Ok(())
        })
        .unwrap();
        drop(o);
        assert!(matches!(Outbox::open(t.file()), Err(OutboxError::NewerFormat { found: 99, .. })));
    }

    #[test]
    fn another_owners_captures_are_never_sent_as_yours() {
        let t = Temp::new();
        let o = Outbox::open(t.file()).unwrap();
        o.claim("alice@a").unwrap();
        o.claim("alice@a").unwrap();
        o.add(&[capture(1)]).unwrap();
        let e = o.claim("bob@a").unwrap_err();
        assert!(matches!(&e, OutboxError::OtherOwner { pending: 1, .. }), "{e}");
        assert!(e.to_string().contains("alice@a"), "{e}");
        o.remove(&[o.oldest(1).unwrap()[0].0]).unwrap();
        o.claim("bob@a").unwrap();
    }

    #[tokio::test]
    async fn flush_sends_oldest_first_and_removes_what_was_answered() {
        let t = Temp::new();
        let o = Outbox::open(t.file()).unwrap();
        o.add(&(1..=7).map(capture).collect::<Vec<_>>()).unwrap();
        let server = fake(|_, c| ok(c, |n| ["created", "duplicate", "merged", "rejected"][n as usize % 4])).await;
        let report = o.flush(&server.client(), Auth::Access("t"), 3).await.unwrap();
        assert_eq!(server.batches(), vec![vec![1, 2, 3], vec![4, 5, 6], vec![7]]);
        assert_eq!((report.created, report.duplicate, report.merged), (1, 2, 2));
        let rejected: Vec<_> =
            report.rejected.iter().map(|(c, r)| (numbers(std::slice::from_ref(c))[0], r.as_str())).collect();
        assert_eq!(rejected, vec![(3, "no kind for 3"), (7, "no kind for 7")], "rejections keep their capture");
        assert_eq!(report.total(), 7);
        assert_eq!(o.pending().unwrap(), 0, "rejected ones are removed too: they would never succeed");
        assert_eq!(o.flush(&server.client(), Auth::Access("t"), 3).await.unwrap(), FlushReport::default());
        assert_eq!(server.batches().len(), 3, "an empty outbox sends nothing");
    }

    #[tokio::test]
    async fn a_batch_without_an_answer_stays_queued_and_is_sent_again() {
        let t = Temp::new();
        let o = Outbox::open(t.file()).unwrap();
        o.add(&(1..=5).map(capture).collect::<Vec<_>>()).unwrap();
        // The second batch fails on the server: the first is gone, the second stays.
        let flaky =
            fake(|n, c| if n == 2 { (503, "{\"error\":\"unavailable\"}".into()) } else { ok(c, |_| "created") }).await;
        let e = o.flush(&flaky.client(), Auth::Access("t"), 2).await.unwrap_err();
        assert!(matches!(&e, OutboxError::Client(c) if c.status() == Some(503)), "{e}");
        assert_eq!(queued(&o), vec![3, 4, 5]);
        // The server answers with the wrong number of results: nothing is removed.
        let short = fake(|_, c| ok(&c[1..], |_| "created")).await;
        let e = o.flush(&short.client(), Auth::Access("t"), 2).await.unwrap_err();
        assert!(e.to_string().contains("1 results for 2 captures"), "{e}");
        // An answer we do not understand removes nothing either.
        let odd = fake(|_, c| ok(c, |_| "maybe")).await;
        assert!(o.flush(&odd.client(), Auth::Access("t"), 2).await.is_err());
        assert_eq!(queued(&o), vec![3, 4, 5]);
        // A process that dies mid-flush: its outbox, reopened, resends from the oldest unanswered.
        drop(o);
        let o = Outbox::open(t.file()).unwrap();
        let good = fake(|_, c| ok(c, |_| "duplicate")).await;
        let report = o.flush(&good.client(), Auth::Access("t"), 1000).await.unwrap();
        assert_eq!(good.batches(), vec![vec![3, 4, 5]]);
        assert_eq!(report.duplicate, 3);
        assert_eq!(o.pending().unwrap(), 0);
    }

    #[tokio::test]
    async fn batches_too_large_for_the_server_are_halved() {
        let t = Temp::new();
        let o = Outbox::open(t.file()).unwrap();
        o.add(&(1..=8).map(capture).collect::<Vec<_>>()).unwrap();
        // The server takes at most 2 per batch, and never capture 8.
        let server = fake(|_, c| {
            if c.len() > 2 || numbers(c).contains(&8) {
                (413, "{\"error\":\"request_too_large\",\"error_description\":\"over 16 bytes\"}".into())
            } else {
                ok(c, |_| "created")
            }
        })
        .await;
        let report = o.flush(&server.client(), Auth::Access("t"), 8).await.unwrap();
        assert_eq!(report.created, 7);
        assert_eq!(report.rejected.len(), 1);
        assert_eq!(report.rejected[0].1, "too large: over 16 bytes");
        let sent: Vec<usize> = server.batches().iter().map(Vec::len).collect();
        // 8 and 4 are too many; [7, 8] is too large, so 7 goes alone and then 8, alone, is refused.
        assert_eq!(sent, vec![8, 4, 2, 2, 2, 2, 1, 1], "halved, and kept small after");
        assert_eq!(o.pending().unwrap(), 0);
    }

    #[tokio::test]
    async fn captures_added_during_a_flush_are_sent_too_in_order() {
        let t = Temp::new();
        let o = Outbox::open(t.file()).unwrap();
        o.add(&[capture(1), capture(2)]).unwrap();
        let adder = o.clone();
        let server = fake(move |n, c| {
            if n == 1 {
                adder.add(&[capture(3)]).unwrap();
            }
            ok(c, |_| "created")
        })
        .await;
        let report = o.flush(&server.client(), Auth::Access("t"), 2).await.unwrap();
        assert_eq!(server.batches(), vec![vec![1, 2], vec![3]]);
        assert_eq!(report.created, 3);
    }
}
