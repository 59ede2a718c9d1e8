//! `spawn_app`: a fresh server on port 0 over a fresh database, per test.

use latchkey_client::{AppCredentials, Client};
use latchkey_domain::Timestamp;
use latchkey_proto::oauth::{DeviceAuthorization, TokenResponse};
use latchkey_server::config::ServerConfig;
use latchkey_server::Server;
use latchkey_store::{AppRecord, ClientKind, GrantType, NewUser, Store};
use latchkey_store_postgres::PgStore;
use latchkey_store_sqlite::{Durability, SqliteStore};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Environment variable naming the PostgreSQL server for the PostgreSQL half of the suite.
pub const PG_ENV: &str = "LATCHKEY_TEST_POSTGRES_URL";
/// Password every test user gets.
pub const PASSWORD: &str = "correct horse battery staple";

/// Which backend a test runs on.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    /// The PostgreSQL backend if the environment asks for it.
    pub fn postgres() -> Option<Backend> {
        match std::env::var(PG_ENV) {
            Ok(url) if !url.is_empty() => Some(Backend::Postgres(url)),
            _ => {
                eprintln!("PostgreSQL half skipped: {PG_ENV} is not set");
                None
            }
        }
    }
}

/// Runs each listed `async fn(Backend)` once per backend.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(b) = $crate::support::Backend::postgres() {
                        super::$name(b).await
                    }
                }
            )*
        }
    };
}

enum Storage {
    /// Another server's database: nothing to clean up.
    Shared,
    Sqlite(PathBuf),
    Postgres {
        url: String,
        schema: String,
    },
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    /// Base URL (`http://127.0.0.1:<port>`).
    pub url: String,
    /// Client library pointed at it.
    pub client: Client,
    /// The store behind it, for setup and inspection.
    pub store: Arc<dyn Store>,
    /// Base URL of the metrics listener (`None` unless the test set `metrics_listen`).
    pub metrics_url: Option<String>,
    storage: Storage,
    waiters: Arc<latchkey_server::long_poll::NetworkWaiters>,
    dpop_replay: Arc<std::sync::Mutex<latchkey_domain::dpop::ReplayWindow>>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
}

/// The public app most tests log in as: device code and refresh tokens, DPoP
/// optional (Latchkey's own CLI app requires DPoP; tests of that use [`cli`]).
pub const DEVICE_APP: &str = "test-device-app";
/// [`DEVICE_APP`]'s display name, as pages show it.
pub const DEVICE_APP_NAME: &str = "Test device app";

/// [`DEVICE_APP`]'s credentials.
pub fn device_app() -> AppCredentials {
    AppCredentials::public(DEVICE_APP)
}

/// The built-in CLI app's credentials (its token requests need a DPoP proof).
pub fn cli() -> AppCredentials {
    AppCredentials::public(latchkey_proto::CLI_CLIENT_ID)
}

/// A device login of [`DEVICE_APP`] approved through the API, named and placed; returns the device ID.
pub async fn approved_device(app: &TestApp, session: &str, name: &str, location: &str) -> String {
    approved_device_with_tokens(app, session, name, location).await.0
}

/// [`approved_device`], with the tokens the device received.
pub async fn approved_device_with_tokens(
    app: &TestApp,
    session: &str,
    name: &str,
    location: &str,
) -> (String, TokenResponse) {
    let params = latchkey_client::DeviceParams {
        name: Some(name.into()),
        location: Some(location.into()),
        platform: Some("linux-x86_64".into()),
        ..Default::default()
    };
    let auth = app.client.device_authorization_as(&device_app(), "openid", &params).await.expect("device login");
    app.client.decide_device_login(session, &auth.user_code, true).await.expect("approve");
    let tokens = app.client.poll_token(&device_app(), &auth.device_code).await.expect("tokens");
    let devices = app.client.devices(session).await.expect("devices");
    (devices.into_iter().find(|d| d.name == name).expect("the new device is listed").id, tokens)
}

/// Current time.
/// Enrolling "Headless box" in the basement with enrollment key `key`, as a machine with no browser would.
pub fn headless_enrollment(key: &str) -> latchkey_proto::api::EnrollRequest {
    latchkey_proto::api::EnrollRequest {
        enrollment_key: key.into(),
        name: "Headless box".into(),
        slug: None,
        location: "basement".into(),
        platform: "linux-aarch64".into(),
        client_version: "test".into(),
        scope: "openid".into(),
    }
}

pub fn now() -> Timestamp {
    latchkey_server::state::now()
}

/// A cookie-keeping HTTP client that does not follow redirects: a browser without JavaScript.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("Mozilla/5.0 (test browser)")
        .build()
        .expect("browser")
}

/// The value of the first form field `name` in a page.
pub fn form_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).map(|i| i + marker.len()).unwrap_or_else(|| panic!("no {name} field in page"));
    html[start..].split('"').next().unwrap_or_default().to_string()
}

/// Config used by tests: everything default except what the test changes.
pub fn test_config() -> ServerConfig {
    let mut c = ServerConfig::new("http://placeholder");
    c.wait_timeout = std::time::Duration::from_secs(20);
    c
}

/// The server secret key of every test server (as `LATCHKEY_SECRET_KEY` would give it).
pub fn test_secret_key() -> latchkey_domain::at_rest::SecretKey {
    latchkey_domain::at_rest::SecretKey::from_bytes([0x5e; 32])
}

/// Unlocks a test store with [`test_secret_key`], as `latchkey serve` does at start.
pub async fn unlock(store: &dyn Store) {
    store.secure_keys(test_secret_key(), now()).await.expect("unlock the store with the test secret key");
}

async fn open(backend: &Backend) -> (Arc<dyn Store>, Storage) {
    let (store, storage) = open_locked(backend).await;
    unlock(store.as_ref()).await;
    (store, storage)
}

async fn open_locked(backend: &Backend) -> (Arc<dyn Store>, Storage) {
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(format!("latchkey-test-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            let store = SqliteStore::open(dir.join("latchkey.sqlite3"), Durability::Normal).await.expect("open SQLite");
            (Arc::new(store), Storage::Sqlite(dir))
        }
        Backend::Postgres(url) => {
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            let store = PgStore::connect(url, Some(&schema))
                .await
                .unwrap_or_else(|e| panic!("{PG_ENV} is set but PostgreSQL is not usable: {e}"));
            (Arc::new(store), Storage::Postgres { url: url.clone(), schema })
        }
    }
}

/// A fresh server with default test settings.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// A fresh server; `tweak` adjusts its settings, which must pass the same checks as `latchkey serve`'s.
pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut ServerConfig)) -> TestApp {
    let (store, storage) = open(&backend).await;
    start(store, storage, Checks::Validate, tweak).await
}

/// A server over an existing SQLite data directory (e.g. one a backup was restored into),
/// which it deletes when dropped.
pub async fn spawn_app_on_sqlite_dir(dir: PathBuf, tweak: impl FnOnce(&mut ServerConfig)) -> TestApp {
    let store = SqliteStore::open(dir.join("latchkey.sqlite3"), Durability::Normal).await.expect("open SQLite");
    unlock(&store).await;
    start(Arc::new(store), Storage::Sqlite(dir), Checks::Validate, tweak).await
}

/// A fresh server with settings no operator may choose (e.g. a 1-second device code, to
/// see it expire); only for timings a test cannot wait out at the allowed values.
pub async fn spawn_app_outside_limits(backend: Backend, tweak: impl FnOnce(&mut ServerConfig)) -> TestApp {
    let (store, storage) = open(&backend).await;
    start(store, storage, Checks::Skip, tweak).await
}

/// Whether a test server's settings are validated.
#[derive(PartialEq)]
enum Checks {
    Validate,
    Skip,
}

async fn start(
    store: Arc<dyn Store>,
    storage: Storage,
    checks: Checks,
    tweak: impl FnOnce(&mut ServerConfig),
) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let mut config = test_config();
    config.public_url = url.clone();
    tweak(&mut config);
    if checks == Checks::Validate {
        config.validate().unwrap_or_else(|e| panic!("test settings are invalid: {e}"));
    }
    let server = Server::new(store.clone(), config).await.expect("server");
    let metrics_url = server.metrics_addr().map(|a| format!("http://{a}"));
    let waiters = server.state().waiters.clone();
    let dpop_replay = server.state().dpop_replay.clone();
    let device_app = AppRecord {
        client_id: DEVICE_APP.into(),
        display_name: DEVICE_APP_NAME.into(),
        kind: ClientKind::Public,
        secret_hash: None,
        grant_types: vec![GrantType::DeviceCode, GrantType::RefreshToken],
        redirect_uris: vec![],
        app_url: None,
        qr_sign_in: false,
        require_dpop: false,
        created_at: now(),
        post_logout_redirect_uris: Vec::new(),
        id_token_alg: Default::default(),
    };
    // A replica shares the first server's database, and its apps.
    match store.create_app(device_app, None, now()).await {
        Ok(()) | Err(latchkey_store::StoreError::Conflict(_)) => {}
        Err(e) => panic!("registering the test device app: {e}"),
    }
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(listener, async {
        let _ = rx.await;
    }));
    TestApp {
        client: Client::new(&url).expect("client"),
        url,
        store,
        metrics_url,
        storage,
        waiters,
        dpop_replay,
        shutdown: Some(tx),
        handle: Some(handle),
    }
}

impl TestApp {
    /// Long-polls and channels the tests' own network (loopback) holds on this server now.
    pub fn held_by_loopback(&self) -> usize {
        self.waiters.held_by(std::net::IpAddr::from([127, 0, 0, 1]))
    }

    /// Networks holding at least one long-poll or channel on this server now.
    pub fn waiting_networks(&self) -> usize {
        self.waiters.networks()
    }

    /// DPoP proofs this server's replay memory holds now.
    pub fn dpop_remembered(&self) -> usize {
        self.dpop_replay.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// A second server (replica) over the same PostgreSQL schema.
    pub async fn replica(&self) -> TestApp {
        let Storage::Postgres { url, schema } = &self.storage else { panic!("replicas need PostgreSQL") };
        let store: Arc<dyn Store> = Arc::new(PgStore::connect(url, Some(schema)).await.expect("replica store"));
        unlock(store.as_ref()).await;
        // Replicas sit behind one load balancer: one public URL, one issuer.
        let issuer = self.url.clone();
        start(store, Storage::Shared, Checks::Validate, move |c| c.public_url = issuer).await
    }

    /// The data directory of a SQLite test server.
    pub fn sqlite_dir(&self) -> Option<&std::path::Path> {
        match &self.storage {
            Storage::Sqlite(dir) => Some(dir),
            _ => None,
        }
    }

    /// Creates a user with [`PASSWORD`].
    pub async fn add_user(&self, name: &str, admin: bool) -> String {
        let hash = latchkey_server::passwords::hash(PASSWORD.into()).await.expect("hash");
        let id = uuid::Uuid::now_v7().to_string();
        let user = NewUser { id: id.clone(), username: name.into(), password_hash: hash, is_admin: admin };
        self.store.create_user(user, None, now()).await.expect("create user");
        id
    }

    /// Creates a user and signs in; returns the session token.
    pub async fn signed_in(&self, name: &str) -> String {
        self.add_user(name, false).await;
        self.client.sign_in(name, PASSWORD).await.expect("sign in").session_token
    }

    /// Registers an app.
    pub async fn add_app(&self, client_id: &str, kind: ClientKind, secret: Option<&str>, grants: &[GrantType]) {
        let app = AppRecord {
            client_id: client_id.into(),
            display_name: format!("App {client_id}"),
            kind,
            secret_hash: secret.map(latchkey_domain::secret::SecretHash::of),
            grant_types: grants.to_vec(),
            redirect_uris: vec![],
            app_url: None,
            qr_sign_in: false,
            require_dpop: false,
            created_at: now(),
            post_logout_redirect_uris: Vec::new(),
            id_token_alg: Default::default(),
        };
        self.store.create_app(app, None, now()).await.expect("create app");
    }

    /// Changes an app's settings as an admin would (what the Apps page saves), and
    /// wakes whatever waits on it.
    pub async fn change_app(&self, client_id: &str, change: impl FnOnce(&mut latchkey_store::AppUpdate)) {
        let id = latchkey_store::AppId(client_id);
        let a = self.store.app(id).await.expect("read the app").expect("the app exists");
        let mut update = latchkey_store::AppUpdate {
            display_name: a.display_name,
            grant_types: a.grant_types,
            app_url: a.app_url,
            qr_sign_in: a.qr_sign_in,
            require_dpop: a.require_dpop,
            redirect_uris: a.redirect_uris,
            post_logout_redirect_uris: a.post_logout_redirect_uris,
            id_token_alg: a.id_token_alg,
        };
        change(&mut update);
        let actor = latchkey_store::Actor("admin");
        self.store.update_app(id, update, actor, now()).await.expect("update the app").expect("the app exists");
        self.store.notifier().notify_all();
    }

    /// A client of this server with a fresh device key: every token request and
    /// account call it makes carries a DPoP proof, as `latchkey` does.
    pub fn keyed_client(&self) -> Client {
        let key = latchkey_client::dpop::DeviceKey::generate().expect("device key");
        Client::new(&self.url).expect("client").with_device_key(Arc::new(key))
    }

    /// Starts a device login as the test device app.
    pub async fn start_login(&self, scope: &str) -> DeviceAuthorization {
        self.client.device_authorization(&device_app(), scope, Some("test device")).await.expect("device authorization")
    }

    /// A complete device login for a new user; returns the tokens.
    pub async fn login(&self, user: &str, scope: &str) -> TokenResponse {
        let session = self.signed_in(user).await;
        let auth = self.start_login(scope).await;
        self.client.decide_device_login(&session, &auth.user_code, true).await.expect("approve");
        self.client.poll_token(&device_app(), &auth.device_code).await.expect("tokens")
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.expect("server task").expect("server run");
        }
    }

    /// Every row of every table of the test's database as text (blobs as hex),
    /// plus, for SQLite, the raw bytes of its files as hex: for checking what is
    /// (not) stored.
    pub async fn database_text(&self) -> String {
        match &self.storage {
            Storage::Sqlite(dir) => {
                let conn = rusqlite::Connection::open(dir.join("latchkey.sqlite3")).expect("open");
                conn.busy_timeout(std::time::Duration::from_secs(5)).expect("busy timeout");
                let tables: Vec<String> = conn
                    .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
                    .expect("tables")
                    .query_map([], |r| r.get(0))
                    .expect("tables")
                    .collect::<Result<_, _>>()
                    .expect("tables");
                let mut out = String::new();
                for t in tables {
                    let mut stmt = conn.prepare(&format!("SELECT * FROM \"{t}\"")).expect("select");
                    let n = stmt.column_count();
                    let mut rows = stmt.query([]).expect("rows");
                    while let Some(row) = rows.next().expect("row") {
                        for i in 0..n {
                            use rusqlite::types::ValueRef;
                            match row.get_ref(i).expect("value") {
                                ValueRef::Text(b) => out.push_str(&String::from_utf8_lossy(b)),
                                ValueRef::Blob(b) => out.push_str(&hex::encode(b)),
                                ValueRef::Integer(v) => out.push_str(&v.to_string()),
                                ValueRef::Real(v) => out.push_str(&v.to_string()),
                                ValueRef::Null => {}
                            }
                            out.push(' ');
                        }
                        out.push('\n');
                    }
                }
                for file in ["latchkey.sqlite3", "latchkey.sqlite3-wal"] {
                    if let Ok(bytes) = std::fs::read(dir.join(file)) {
                        out.push_str(&hex::encode(bytes));
                    }
                }
                out
            }
            Storage::Shared => panic!("database_text on a replica"),
            Storage::Postgres { url, schema } => {
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
                tokio::spawn(conn);
                let tables = client
                    .query("SELECT table_name FROM information_schema.tables WHERE table_schema = $1", &[schema])
                    .await
                    .expect("tables");
                let mut out = String::new();
                for t in tables {
                    let name: String = t.get(0);
                    let q = format!("SELECT CAST(row_to_json(t) AS TEXT) FROM {schema}.\"{name}\" t");
                    for row in client.query(q.as_str(), &[]).await.expect("rows") {
                        out.push_str(&row.get::<_, String>(0));
                        out.push('\n');
                    }
                }
                out
            }
        }
    }

    /// Waits until every audit entry written so far is sealed into the tree (the
    /// server's sealer runs every 250 ms; this seals too, so it is quick).
    pub async fn sealed(&self) -> latchkey_store::AuditTreeState {
        for _ in 0..200 {
            let _ = self.store.seal_audit(latchkey_server::state::now(), 100_000).await.expect("seal");
            let written = self.store.audit_entries(0, 1_000_000).await.expect("entries").len() as u64;
            let tree = self.store.audit_tree().await.expect("tree");
            if tree.size >= written {
                return tree;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("the audit log was not sealed within 4 s");
    }

    /// Runs `latchkey admin audit verify`'s check with the server's own keys (and `given` checkpoints).
    pub async fn verify_audit(&self, given: Vec<(String, String)>) -> latchkey_server::audit_log::VerifyReport {
        let keys = latchkey_server::audit_log::verifiers(&self.store.audit_keys().await.expect("keys"));
        latchkey_server::audit_log::verify(self.store.as_ref(), &keys, given).await.expect("verify")
    }

    /// How many rows `table` of the test's own database holds.
    pub async fn rows(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match &self.storage {
            Storage::Sqlite(dir) => {
                let conn = rusqlite::Connection::open(dir.join("latchkey.sqlite3")).expect("open");
                conn.query_row(&sql, [], |r| r.get(0)).expect("count")
            }
            Storage::Shared => panic!("rows on a replica"),
            Storage::Postgres { url, schema } => {
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
                tokio::spawn(conn);
                client.batch_execute(&format!("SET search_path TO {schema}")).await.expect("schema");
                client.query_one(sql.as_str(), &[]).await.expect("count").get(0)
            }
        }
    }

    /// Runs SQL against the test's own database (for tampering tests).
    pub async fn raw_sql(&self, sql: &str) {
        match &self.storage {
            Storage::Sqlite(dir) => {
                let conn = rusqlite::Connection::open(dir.join("latchkey.sqlite3")).expect("open");
                // The server's writer may be mid-commit (the janitor); wait for it rather than fail.
                conn.busy_timeout(std::time::Duration::from_secs(5)).expect("busy timeout");
                conn.execute_batch(sql).expect("sql");
            }
            Storage::Shared => panic!("raw_sql on a replica"),
            Storage::Postgres { url, schema } => {
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
                tokio::spawn(conn);
                client.batch_execute(&format!("SET search_path TO {schema}; {sql}")).await.expect("sql");
            }
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match &self.storage {
            Storage::Shared => {}
            Storage::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Storage::Postgres { url, schema } => {
                let (url, schema) = (url.clone(), schema.clone());
                // Drop runs inside the test's runtime; clean up on a thread of our own.
                let _ = std::thread::spawn(move || {
                    if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                        let _ = rt.block_on(PgStore::drop_schema(&url, &schema));
                    }
                })
                .join();
            }
        }
    }
}
