//! PostgreSQL over TLS: `sslmode=require`, `verify-ca` and `verify-full`
//! against a throwaway cluster this test starts with a certificate it makes;
//! and that cluster restarted under load (it is ours to restart).
//!
//! Needs PostgreSQL's `initdb` and `pg_ctl` (on PATH or under
//! /usr/lib/postgresql/<version>/bin). Without them the test prints why and
//! passes unrun, unless `LATCHKEY_TEST_POSTGRES_TLS` is set (to anything but
//! empty), which makes it fail instead. As root it runs the server as the
//! `postgres` user, as xtask does (initdb refuses to run as root).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use latchkey_store::Store;
use latchkey_store_postgres::PgStore;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

const REQUIRE_VAR: &str = "LATCHKEY_TEST_POSTGRES_TLS";

/// The directory with initdb and pg_ctl: on PATH, else the newest /usr/lib/postgresql/<version>/bin.
fn find_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).find(|d| d.join("pg_ctl").is_file() && d.join("initdb").is_file())
    });
    if on_path.is_some() {
        return on_path;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("pg_ctl").is_file() && bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// A throwaway cluster serving TLS with a certificate for `localhost`; stopped and deleted on drop.
struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    port: u16,
}

impl Cluster {
    /// `program` from the PostgreSQL binaries, as the `postgres` user when we are root.
    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.current_dir(&self.dir).stdin(Stdio::null());
        cmd
    }

    fn run(&self, cmd: &mut Command) {
        let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        if !out.status.success() {
            let log = std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default();
            panic!(
                "{cmd:?} failed ({}):\n{}{}\nserver log:\n{log}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Creates and starts the cluster: TLS on, and only TLS accepted over TCP.
    fn start(bin: PathBuf, server_cert: &str, server_key: &str) -> Cluster {
        let as_postgres = is_root();
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
        // The postgres user must be able to reach it: /tmp rather than a root's TMPDIR.
        let tmp = if as_postgres { PathBuf::from("/tmp") } else { std::env::temp_dir() };
        let dir = tmp.join(format!("latchkey-test-pg-tls-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cluster = Cluster { dir, bin, as_postgres, port };
        let (cert, key) = (cluster.dir.join("server.crt"), cluster.dir.join("server.key"));
        std::fs::write(&cert, server_cert).unwrap();
        std::fs::write(&key, server_key).unwrap();
        // PostgreSQL refuses a key others can read.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        if as_postgres {
            cluster.run(Command::new("chown").arg("-R").arg("postgres:").arg(&cluster.dir));
        }
        cluster.run(cluster.command("initdb").arg("-D").arg(cluster.data()).args([
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        ]));
        let conf = format!(
            "\nlisten_addresses = 'localhost'\nport = {port}\nunix_socket_directories = '{dir}'\nfsync = off\n\
             ssl = on\nssl_cert_file = '{cert}'\nssl_key_file = '{key}'\n",
            dir = cluster.dir.display(),
            cert = cert.display(),
            key = key.display()
        );
        let mut pg_conf =
            std::fs::OpenOptions::new().append(true).open(cluster.data().join("postgresql.conf")).unwrap();
        std::io::Write::write_all(&mut pg_conf, conf.as_bytes()).unwrap();
        // TCP only with TLS: a plain connection is refused, so a test that gets in used TLS.
        let hba = "local all all trust\n\
                   hostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n\
                   hostnossl all all 127.0.0.1/32 reject\nhostnossl all all ::1/128 reject\n";
        std::fs::write(cluster.data().join("pg_hba.conf"), hba).unwrap();
        let log = cluster.dir.join("postgres.log");
        cluster.run(
            cluster
                .command("pg_ctl")
                .arg("-D")
                .arg(cluster.data())
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "start"]),
        );
        cluster
    }

    fn url(&self, host: &str, params: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres{params}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.data().join("postmaster.pid").exists() {
            let _ = self.command("pg_ctl").arg("-D").arg(self.data()).args(["-m", "immediate", "-w", "stop"]).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A CA, and a server certificate for `localhost` it signed: (CA PEM, server cert PEM, server key PEM).
fn ca_and_server() -> (String, String, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Latchkey test CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "localhost");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

async fn connects(url: &str, schema: &str) -> Result<(), String> {
    let schema = format!("tls_{schema}");
    let store = PgStore::connect(url, Some(&schema)).await.map_err(|e| e.to_string())?;
    assert_eq!(store.count_users().await.expect("a query over the connection"), 0);
    Ok(())
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    // As a URL parameter; these paths have nothing that needs escaping.
    path.display().to_string()
}

#[tokio::test]
async fn sslmodes_against_a_tls_only_server() {
    let Some(bin) = find_bin() else {
        if std::env::var(REQUIRE_VAR).is_ok_and(|v| !v.is_empty()) {
            panic!("{REQUIRE_VAR} is set but initdb and pg_ctl are not installed (apt-get install postgresql)");
        }
        eprintln!(
            "skipping the PostgreSQL TLS test: initdb and pg_ctl not found (set {REQUIRE_VAR} to make this fail)"
        );
        return;
    };
    let (ca, server_cert, server_key) = ca_and_server();
    let cluster = Cluster::start(bin, &server_cert, &server_key);
    let ca = write(&cluster.dir, "ca.pem", &ca);
    let other_ca = write(&cluster.dir, "other-ca.pem", &ca_and_server().0);

    connects(&cluster.url("localhost", &format!("?sslmode=verify-full&sslrootcert={ca}")), "full")
        .await
        .expect("verify-full with the CA that signed the server's certificate");

    let err = connects(&cluster.url("localhost", &format!("?sslmode=verify-full&sslrootcert={other_ca}")), "wrong")
        .await
        .expect_err("verify-full with another CA");
    assert!(err.contains("cannot connect to PostgreSQL") && err.contains("invalid peer certificate"), "{err}");

    // The certificate names localhost, not 127.0.0.1: verify-full refuses, verify-ca does not check names.
    let err = connects(&cluster.url("127.0.0.1", &format!("?sslmode=verify-full&sslrootcert={ca}")), "ip")
        .await
        .expect_err("verify-full with the wrong host name");
    assert!(err.contains("certificate not valid for name \"127.0.0.1\""), "{err}");
    connects(&cluster.url("127.0.0.1", &format!("?sslmode=verify-ca&sslrootcert={ca}")), "ca")
        .await
        .expect("verify-ca ignores the host name");

    // require encrypts without checking: any certificate, any name.
    connects(&cluster.url("127.0.0.1", "?sslmode=require"), "req").await.expect("require");

    // Without sslmode the connection is plain, as before, and this server refuses it.
    let err = connects(&cluster.url("127.0.0.1", ""), "plain").await.expect_err("plain is refused");
    assert!(err.contains("no encryption") || err.contains("pg_hba.conf"), "{err}");

    let err = connects(&cluster.url("localhost", "?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"), "missing")
        .await
        .expect_err("missing root file");
    assert!(err.contains("cannot read sslrootcert /nonexistent/ca.pem"), "{err}");
}

/// PostgreSQL restarted in the middle of the load: writes that were acknowledged
/// survive, writes during the restart fail with an error (never a hang or a
/// panic), and the store recovers by itself: the pool reconnects and the audit
/// sealer seals again. (The listener's reconnection is `listen.rs`'s own.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_load_loses_nothing_acknowledged() {
    use latchkey_domain::audit::{AuditEvent, AuditKind};
    use latchkey_domain::Timestamp;
    use latchkey_store::NewUser;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    let Some(bin) = find_bin() else {
        if std::env::var(REQUIRE_VAR).is_ok_and(|v| !v.is_empty()) {
            panic!("{REQUIRE_VAR} is set but initdb and pg_ctl are not installed (apt-get install postgresql)");
        }
        eprintln!("skipping the PostgreSQL restart test: initdb and pg_ctl not found");
        return;
    };
    let (_, server_cert, server_key) = ca_and_server();
    let cluster = Arc::new(Cluster::start(bin, &server_cert, &server_key));
    let url = cluster.url("127.0.0.1", "?sslmode=require");
    let store: Arc<dyn Store> = Arc::new(PgStore::connect(&url, Some("restart")).await.expect("connect"));
    let now = || Timestamp::from_millis(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64);
    latchkey_store::testsuite::unlock(store.as_ref()).await;
    store.add_audit_key(latchkey_store::testsuite::test_audit_key(), false, "system".into(), now()).await.unwrap();

    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = tokio::task::JoinSet::new();
    for w in 0..4 {
        let (store, acknowledged, failed, stop) = (store.clone(), acknowledged.clone(), failed.clone(), stop.clone());
        load.spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let name = format!("w{w}n{n}");
                let user =
                    NewUser { id: name.clone(), username: name.clone(), password_hash: "x".into(), is_admin: false };
                // Each write bounded in time: a hang would be a failure too.
                match tokio::time::timeout(Duration::from_secs(20), store.create_user(user, None, now())).await {
                    Ok(Ok(_)) => acknowledged.lock().unwrap().push(name),
                    Ok(Err(_)) => {
                        failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(_) => panic!("a write hung across the restart"),
                }
                let _ = tokio::time::timeout(Duration::from_secs(20), store.seal_audit(now(), 1000)).await;
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let before = acknowledged.lock().unwrap().len();
    eprintln!("restart: {before} acknowledged before");
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || {
        // With its log file, or the new postmaster would hold our output pipe open for ever.
        let log = c.dir.join("postgres.log");
        c.run(
            c.command("pg_ctl")
                .arg("-D")
                .arg(c.data())
                .arg("-l")
                .arg(&log)
                .args(["-m", "fast", "-w", "-t", "60", "restart"]),
        )
    })
    .await
    .unwrap();
    // The store finds its way back by itself: wait until writes succeed again, then a little more load.
    let back = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let n = acknowledged.lock().unwrap().len();
            tokio::time::sleep(Duration::from_millis(200)).await;
            if acknowledged.lock().unwrap().len() > n {
                break;
            }
        }
    })
    .await;
    assert!(back.is_ok(), "writes never succeeded again after the restart");
    eprintln!("restart: writes succeed again ({} failed meanwhile)", failed.load(std::sync::atomic::Ordering::Relaxed));
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    while let Some(r) = load.join_next().await {
        r.expect("a load task panicked");
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(before > 0 && acknowledged.len() > before, "load ran before and after: {before}, {}", acknowledged.len());
    for name in &acknowledged {
        assert!(store.user_by_name(name).await.unwrap().is_some(), "acknowledged user {name} was lost");
    }
    // Every acknowledged change has its audit entry, sealed into a tree that verifies.
    let (size, _) = latchkey_store::testsuite::verify_audit_log(store.as_ref()).await;
    assert!(size as usize >= acknowledged.len(), "{size} sealed entries for {} users", acknowledged.len());
    store.append_audit(AuditEvent::new(AuditKind::SignInFailed, None, None), now()).await.expect("a write after");
}
