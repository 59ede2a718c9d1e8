//! The real `latchkey` binary: `serve` and `admin` on one data directory.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    // SQLite in a fresh data directory: the binary makes its own secret.key there.
    c.env_remove("LATCHKEY_DATABASE").env_remove("LATCHKEY_SECRET_KEY").env("LATCHKEY_LOG", "warn");
    c
}

struct TempDir(std::path::PathBuf);
impl TempDir {
    fn new() -> Self {
        let p = std::env::temp_dir().join(format!("latchkey-cli-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&p).expect("dir");
        TempDir(p)
    }
    fn arg(&self) -> String {
        self.0.display().to_string()
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn admin(dir: &TempDir, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = bin()
        .args(["admin", "--data-dir", &dir.arg()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("wait");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn admin_commands_manage_users_apps_keys_and_audit() {
    let dir = TempDir::new();
    let (ok, out, err) = admin(&dir, &["user", "add", "alice", "--admin"], "a long password\n");
    assert!(ok, "{out}{err}");
    assert!(out.contains("Created admin user alice"));
    let (ok, _, err) = admin(&dir, &["user", "add", "alice"], "a long password\n");
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = admin(&dir, &["user", "add", "bob"], "short\n");
    assert!(!ok && err.contains("at least 8"), "{err}");

    let (ok, out, _) = admin(
        &dir,
        &["app", "add", "tray", "--name", "Tray App", "--grant", "device_code", "--grant", "refresh_token"],
        "",
    );
    assert!(ok && out.contains("Registered app tray"));
    let (ok, out, _) = admin(&dir, &["app", "add", "api", "--name", "API", "--confidential"], "");
    assert!(ok && out.contains("client_secret: lkc_"), "{out}");
    let (ok, _, err) = admin(&dir, &["app", "add", "Bad Id", "--name", "x"], "");
    assert!(!ok && err.contains("client ID"), "{err}");
    // Web sign-in apps: the same rules as the Apps page.
    let web = ["app", "add", "web", "--name", "Web", "--grant", "authorization_code"];
    let (ok, _, err) = admin(&dir, &web, "");
    assert!(!ok && err.contains("needs at least one redirect URI"), "{err}");
    let (ok, _, err) = admin(&dir, &[&web[..], &["--redirect-uri", "http://evil.example/cb"]].concat(), "");
    assert!(!ok && err.contains("only https"), "{err}");
    let (ok, _, err) =
        admin(&dir, &[&web[..], &["--redirect-uri", "https://w.example/cb", "--id-token-alg", "HS256"]].concat(), "");
    assert!(!ok && err.contains("EdDSA or RS256"), "{err}");
    let good = [
        "--redirect-uri",
        "https://w.example/cb",
        "--post-logout-redirect-uri",
        "https://w.example/bye",
        "--id-token-alg",
        "RS256",
    ];
    let (ok, out, err) = admin(&dir, &[&web[..], &good[..]].concat(), "");
    assert!(ok && out.contains("Registered app web"), "{out}{err}");
    let (ok, out, _) = admin(&dir, &["app", "list", "--json"], "");
    assert!(ok);
    let apps: serde_json::Value = serde_json::from_str(&out).expect("json");
    let ids: Vec<_> = apps.as_array().expect("array").iter().map(|a| a["client_id"].as_str().unwrap_or("")).collect();
    assert_eq!(ids, ["api", "tray", "web"]);
    let web = &apps[2];
    assert_eq!(web["redirect_uris"], serde_json::json!(["https://w.example/cb"]));
    assert_eq!(web["post_logout_redirect_uris"], serde_json::json!(["https://w.example/bye"]));
    assert_eq!(web["id_token_alg"], "RS256");

    let (ok, out, _) = admin(&dir, &["keys", "rotate"], "");
    assert!(ok && out.contains("is active"));
    let (ok, out, _) = admin(&dir, &["keys", "rotate"], "");
    assert!(ok, "{out}");
    let (_, keys, _) = admin(&dir, &["keys", "list"], "");
    // One active key per algorithm (the RS256 app brought an RSA key); each rotation replaced both.
    let count = |alg: &str, state: &str| keys.lines().filter(|l| l.contains(alg) && l.ends_with(state)).count();
    assert_eq!((count("EdDSA", "active"), count("RS256", "active")), (1, 1), "{keys}");
    assert_eq!((count("EdDSA", "retired"), count("RS256", "retired")), (1, 2), "{keys}");

    let (ok, out, _) = admin(&dir, &["audit", "verify"], "");
    assert!(ok && out.contains("audit log intact: 9 entries sealed"), "{out}");
    let conn = rusqlite::Connection::open(dir.0.join("latchkey.sqlite3")).expect("open");
    conn.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2", []).expect("tamper");
    let (ok, out, _) = admin(&dir, &["audit", "verify"], "");
    assert!(!ok, "tampering makes verify fail");
    assert!(out.contains("entry 2 (leaf 1) does not match what was sealed there"), "{out}");
    let (ok, note, _) = admin(&dir, &["audit", "checkpoint"], "");
    assert!(ok && note.lines().nth(1) == Some("9"), "the signed checkpoint, size 9: {note}");
}

#[test]
fn serve_prints_setup_instructions_and_stops_gracefully_on_sigterm() {
    let dir = TempDir::new();
    let mut child = bin()
        .args(["serve", "--data-dir", &dir.arg(), "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("text");
    assert!(first.starts_with("Latchkey listening on http://127.0.0.1:"), "{first}");
    let second = lines.next().expect("a line").expect("text");
    assert!(second.contains("No accounts yet"), "{second}");
    let third = lines.next().expect("a line").expect("text");
    assert!(third.contains("admin --data-dir") && third.contains("user add <name> --admin"), "{third}");
    let url = first.split_whitespace().nth(3).expect("url").to_string();
    let body = http::get(&format!("{url}/healthz"));
    assert_eq!(body.as_deref(), Some("ok"));
    // SIGTERM: graceful exit with status 0.
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let status = child.wait().expect("wait");
    assert!(status.success(), "exit status {status:?}");
}

/// Writes a fresh self-signed certificate for `localhost` and its key into `dir`; returns the certificate.
fn write_self_signed(dir: &TempDir) -> String {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("rcgen");
    std::fs::write(dir.0.join("cert.pem"), made.cert.pem()).expect("write cert");
    std::fs::write(dir.0.join("key.pem"), made.key_pair.serialize_pem()).expect("write key");
    made.cert.pem()
}

/// The status of GET /healthz over HTTPS at `addr` as `localhost`, trusting only `root`.
fn https_healthz(rt: &tokio::runtime::Runtime, addr: std::net::SocketAddr, root: &str) -> Result<u16, String> {
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(root.as_bytes()).expect("pem"))
        .resolve("localhost", addr)
        .build()
        .expect("client");
    let url = format!("https://localhost:{}/healthz", addr.port());
    rt.block_on(async { client.get(url).send().await.map(|r| r.status().as_u16()).map_err(|e| format!("{e:?}")) })
}

#[test]
fn serve_over_https_reloads_its_certificate_on_sighup() {
    let dir = TempDir::new();
    let first = write_self_signed(&dir);
    let (cert, key) = (dir.0.join("cert.pem").display().to_string(), dir.0.join("key.pem").display().to_string());
    let mut child = bin()
        .args(["serve", "--data-dir", &dir.arg(), "--listen", "127.0.0.1:0", "--tls-cert", &cert, "--tls-key", &key])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first_line = lines.next().expect("a line").expect("text");
    let addr =
        first_line.strip_prefix("Latchkey listening on https://").expect("https").split(' ').next().expect("addr");
    assert!(first_line.contains(&format!("public URL https://{addr}")), "{first_line}");
    let addr: std::net::SocketAddr = addr.parse().expect("socket address");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    assert_eq!(https_healthz(&rt, addr, &first), Ok(200));

    let second = write_self_signed(&dir);
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().expect("kill").success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while https_healthz(&rt, addr, &second).is_err() {
        assert!(std::time::Instant::now() < deadline, "the new certificate is not served after SIGHUP");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(https_healthz(&rt, addr, &first).is_err(), "the old certificate is no longer served");

    // A bad key on SIGHUP keeps the certificate in use, and the server up.
    std::fs::write(dir.0.join("key.pem"), "not a key").expect("write");
    assert!(Command::new("kill").args(["-HUP", &pid]).status().expect("kill").success());
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(https_healthz(&rt, addr, &second), Ok(200));

    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let status = child.wait().expect("wait");
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn serve_refuses_a_certificate_without_its_key() {
    let dir = TempDir::new();
    let out = bin()
        .args(["serve", "--data-dir", &dir.arg(), "--listen", "127.0.0.1:0", "--tls-cert", "/nonexistent/cert.pem"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tls-cert") && err.contains("needs --tls-key"), "{err}");
}

mod http {
    /// A plain blocking GET over std (the async client needs a runtime; this test has none).
    pub fn get(url: &str) -> Option<String> {
        use std::io::{Read, Write};
        let hostport = url.strip_prefix("http://")?.split('/').next()?.to_string();
        let path = format!("/{}", url.strip_prefix("http://")?.split_once('/')?.1);
        let mut s = std::net::TcpStream::connect(&hostport).ok()?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n").ok()?;
        let mut resp = String::new();
        s.read_to_string(&mut resp).ok()?;
        resp.split("\r\n\r\n").nth(1).map(|b| b.to_string())
    }
}

#[test]
fn admin_user_commands_stop_restore_reset_and_delete_accounts() {
    let dir = TempDir::new();
    assert!(admin(&dir, &["user", "add", "alice"], "a long password\n").0);
    let (ok, out, _) = admin(&dir, &["user", "list"], "");
    assert!(ok && out.lines().any(|l| l.starts_with("alice") && l.contains("active")), "{out}");

    let (ok, out, err) = admin(&dir, &["user", "disable", "alice"], "");
    assert!(ok && out.contains("Disabled alice"), "{out}{err}");
    let (_, out, _) = admin(&dir, &["user", "list", "--json"], "");
    let list: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(list[0]["status"], "disabled", "{out}");
    assert!(admin(&dir, &["user", "enable", "alice"], "").0);
    let (_, out, _) = admin(&dir, &["user", "list", "--json"], "");
    assert!(out.contains("\"active\""), "{out}");

    let (ok, _, err) = admin(&dir, &["user", "reset-password", "alice"], "short\n");
    assert!(!ok && err.contains("at least 8"), "a weak password is refused: {err}");
    let (ok, out, err) = admin(&dir, &["user", "reset-password", "alice"], "another long password\n");
    assert!(ok && out.contains("every session"), "{out}{err}");
    let (ok, out, err) = admin(&dir, &["user", "revoke-all", "alice"], "");
    assert!(ok && out.contains("0 sessions"), "{out}{err}");
    let (ok, _, err) = admin(&dir, &["user", "disable", "nobody"], "");
    assert!(!ok && err.contains("there is no user nobody"), "{err}");

    // Deleting asks first; without a terminal it needs --yes.
    let (ok, _, err) = admin(&dir, &["user", "delete", "alice"], "");
    assert!(!ok && err.contains("--yes"), "{err}");
    let (ok, out, err) = admin(&dir, &["user", "delete", "alice", "--yes"], "");
    assert!(ok && out.contains("Deleted alice"), "{out}{err}");
    let (_, out, _) = admin(&dir, &["user", "list", "--json"], "");
    assert_eq!(out.trim(), "[]");
    let (ok, out, err) = admin(&dir, &["audit", "verify"], "");
    assert!(ok, "{out}{err}");
}

#[test]
fn version_names_the_crate_version_and_the_git_revision() {
    let out = bin().arg("--version").output().expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let expected = format!("latchkey {} (", env!("CARGO_PKG_VERSION"));
    assert!(text.starts_with(&expected) && text.trim_end().ends_with(')'), "{text}");
    let rev = text.trim_end().trim_end_matches(')').rsplit('(').next().unwrap_or_default();
    assert!(rev == "unknown" || rev.chars().all(|c| c.is_ascii_hexdigit()) && rev.len() >= 7, "revision {rev:?}");
}
