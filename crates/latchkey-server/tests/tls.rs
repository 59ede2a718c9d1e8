//! HTTPS: the server serves its certificate, swaps it when reloaded, keeps it
//! when the new files are bad, and still shuts down gracefully.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use latchkey_server::config::ServerConfig;
use latchkey_server::tls::Tls;
use latchkey_server::Server;
use latchkey_store_sqlite::{Durability, SqliteStore};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh self-signed certificate for `localhost`: (certificate PEM, key PEM).
fn self_signed() -> (String, String) {
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("rcgen");
    (cert.pem(), key_pair.serialize_pem())
}

fn write_pair(dir: &Path, (cert, key): &(String, String)) -> (PathBuf, PathBuf) {
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert).unwrap();
    std::fs::write(&k, key).unwrap();
    (c, k)
}

/// GET /healthz over HTTPS at `addr` as `localhost`, trusting only `root`.
async fn healthz(addr: SocketAddr, root: &str) -> Result<reqwest::StatusCode, reqwest::Error> {
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(root.as_bytes()).unwrap())
        .resolve("localhost", addr)
        .build()
        .unwrap();
    Ok(client.get(format!("https://localhost:{}/healthz", addr.port())).send().await?.status())
}

#[tokio::test]
async fn serves_https_and_reloads_the_certificate() {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    let dir = std::env::temp_dir().join(format!("latchkey-tls-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let first = self_signed();
    let (cert_path, key_path) = write_pair(&dir, &first);

    let store = Arc::new(SqliteStore::open(dir.join("db.sqlite3"), Durability::Normal).await.unwrap());
    let secret = latchkey_domain::at_rest::SecretKey::from_bytes([0x5e; 32]);
    latchkey_store::Store::secure_keys(&*store, secret, latchkey_server::state::now()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(store, ServerConfig::new(format!("https://localhost:{}", addr.port()))).await.unwrap();
    let tls = Tls::from_pem_files(&cert_path, &key_path).unwrap();
    let reloader = tls.reloader();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        server
            .run_tls(listener, &tls, async {
                let _ = stopped.await;
            })
            .await
    });

    assert_eq!(healthz(addr, &first.0).await.expect("HTTPS with the first certificate"), 200);
    let plain = reqwest::get(format!("http://{addr}/healthz")).await;
    assert!(plain.is_err(), "plain HTTP is not served on the TLS port: {plain:?}");

    // A new certificate on disk is not served until reloaded.
    let second = self_signed();
    write_pair(&dir, &second);
    assert!(healthz(addr, &second.0).await.is_err(), "not reloaded yet");
    reloader.reload().expect("reload");
    assert_eq!(healthz(addr, &second.0).await.expect("HTTPS with the second certificate"), 200);
    assert!(healthz(addr, &first.0).await.is_err(), "the first certificate is no longer served");

    // A bad key keeps the certificate in use, and the error names the file.
    std::fs::write(&key_path, "not a key").unwrap();
    let err = reloader.reload().expect_err("bad key").to_string();
    assert!(err.contains("key.pem"), "{err}");
    // A key that does not belong to the certificate is refused too.
    std::fs::write(&key_path, self_signed().1).unwrap();
    let err = reloader.reload().expect_err("mismatched key").to_string();
    assert!(err.contains("cannot be used together"), "{err}");
    assert_eq!(healthz(addr, &second.0).await.expect("still the second certificate"), 200);

    stop.send(()).unwrap();
    running.await.unwrap().expect("graceful shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_or_empty_files_are_named() {
    let dir = std::env::temp_dir().join(format!("latchkey-tls-missing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let err = Tls::from_pem_files(dir.join("nope.pem"), dir.join("nope.key")).expect_err("missing").to_string();
    assert!(err.contains("certificate chain") && err.contains("nope.pem"), "{err}");
    std::fs::write(dir.join("empty.pem"), "").unwrap();
    let err = Tls::from_pem_files(dir.join("empty.pem"), dir.join("nope.key")).expect_err("empty").to_string();
    assert!(err.contains("empty.pem"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
