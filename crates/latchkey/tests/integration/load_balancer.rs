//! Two real `latchkey serve` replicas on one PostgreSQL behind a real HAProxy,
//! as an operator runs them: a device login that authorizes on one replica,
//! waits on the other and is approved through the balancer; a QR sign-in
//! split the same way; a revocation that takes effect on both at once; and one
//! replica killed with SIGKILL under load, losing nothing it acknowledged.

use crate::crash::{serve, Data};
use crate::support::Backend;
use latchkey_client::{AppCredentials, Client};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

const PASSWORD: &str = "balanced-password-1";
const APP: &str = "lb-tray";

/// HAProxy, from `LATCHKEY_HAPROXY` or the PATH (`cargo xtask test` installs Debian's `haproxy`).
fn haproxy_bin() -> String {
    if let Ok(p) = std::env::var("LATCHKEY_HAPROXY") {
        return p;
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':').chain(["/usr/sbin", "/sbin"]) {
        let p = std::path::Path::new(dir).join("haproxy");
        if p.exists() {
            return p.to_string_lossy().into_owned();
        }
    }
    panic!(
        "haproxy not found: the load-balancer test needs Debian's haproxy (`apt-get install -y haproxy`; \
         `cargo xtask test` installs it), or set LATCHKEY_HAPROXY"
    );
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().and_then(|p| p.trim_end_matches('/').parse().ok()).expect("a port")
}

/// Starts HAProxy on `port` in front of `replicas`, with health checks every 200 ms,
/// and waits until it answers.
async fn balancer(port: u16, replicas: &[&str]) -> Child {
    let servers: String =
        replicas.iter().enumerate().map(|(i, url)| format!("    server r{i} 127.0.0.1:{}\n", port_of(url))).collect();
    let config = format!(
        "global\n    maxconn 2000\n\
         defaults\n    mode http\n    timeout connect 2s\n    timeout client 60s\n    timeout server 60s\n\
         \x20   retries 3\n    option redispatch\n    retry-on conn-failure\n\
         frontend latchkey\n    bind 127.0.0.1:{port}\n    default_backend replicas\n\
         backend replicas\n    balance roundrobin\n    option httpchk GET /healthz\n\
         \x20   default-server check inter 200ms fall 2 rise 2\n{servers}"
    );
    let path = std::env::temp_dir().join(format!("latchkey-haproxy-{}.cfg", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, config).expect("write haproxy.cfg");
    let child = Command::new(haproxy_bin())
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn haproxy");
    let url = format!("http://127.0.0.1:{port}/healthz");
    for _ in 0..100 {
        if reqwest::get(&url).await.is_ok_and(|r| r.status().is_success()) {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("haproxy did not answer on port {port}");
}

/// Runs `latchkey admin ARGS` on `data`, feeding `stdin`; panics with its stderr if it fails.
async fn admin(data: &Data, args: &[&str], stdin: &str) {
    let mut child = data
        .latchkey("admin", args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn admin");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).await.expect("stdin");
    let out = child.wait_with_output().await.expect("admin ran");
    assert!(out.status.success(), "admin {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn app() -> AppCredentials {
    AppCredentials::public(APP)
}

/// One login through the balancer; `approved` gets its name once the approval was acknowledged.
async fn login(lb: &str, session: &str, name: &str, approved: &Mutex<Vec<String>>) -> Option<String> {
    let client = Client::new(lb).ok()?;
    let auth = client.device_authorization(&app(), "openid", Some(name)).await.ok()?;
    client.decide_device_login(session, &auth.user_code, true).await.ok()?;
    approved.lock().expect("lock").push(name.to_string());
    let tokens = client.poll_token(&app(), &auth.device_code).await.ok()?;
    tokens.refresh_token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_behind_haproxy_share_logins_qr_revocation_and_survive_a_kill() {
    let Some(pg) = Backend::postgres() else { return };
    let data = Data::fresh(pg).await;
    // One approver per load worker: an account holds at most 50 active devices.
    for name in ["alice", "w0", "w1", "w2", "w3", "w4", "w5"] {
        admin(&data, &["user", "add", name], &format!("{PASSWORD}\n")).await;
    }
    let url_flags = ["--name", "LB tray", "--grant", "device_code", "--grant", "refresh_token"];
    let qr_flags = ["--app-url", "http://127.0.0.1:9", "--qr-sign-in"];
    let add: Vec<&str> = ["app", "add", APP].into_iter().chain(url_flags).chain(qr_flags).collect();
    admin(&data, &add, "").await;

    // The balancer's port first: it is the replicas' public URL (their issuer and DPoP `htu`).
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
    let lb = format!("http://127.0.0.1:{port}");
    let flags = ["--public-url", lb.as_str()];
    let (mut one, one_url) = serve(&data, "127.0.0.1:0", &flags).await;
    let (_two, two_url) = serve(&data, "127.0.0.1:0", &flags).await;
    let _haproxy = balancer(port, &[&one_url, &two_url]).await;
    let (via_lb, via_one, via_two) =
        (Client::new(&lb).expect("lb"), Client::new(&one_url).expect("one"), Client::new(&two_url).expect("two"));
    let session = via_lb.sign_in("alice", PASSWORD).await.expect("sign in through the balancer").session_token;

    // Device login: authorize on one replica, wait on the other, approve through the balancer.
    let auth = via_one.device_authorization(&app(), "openid", Some("split")).await.expect("authorize on one");
    let waiter = {
        let (client, code) = (via_two.clone(), auth.device_code.clone());
        tokio::spawn(async move { client.wait_token(&app(), &code).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    via_lb.decide_device_login(session.as_str(), &auth.user_code, true).await.expect("approve through the balancer");
    let tokens = tokio::time::timeout(Duration::from_secs(15), waiter)
        .await
        .expect("the waiting replica was woken")
        .expect("task")
        .expect("tokens from the other replica");

    // QR sign-in: the desktop waits on one replica, the phone approves on the other.
    let started = via_one.start_pairing(APP).await.expect("start a QR sign-in");
    let desk = {
        let (client, secret) = (via_one.clone(), started.pairing_secret.clone());
        tokio::spawn(async move { client.wait_pairing(&secret).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let code = started.phone_url.rsplit('/').next().expect("code").to_string();
    via_two.decide_pairing(session.as_str(), &code, true).await.expect("approve on the other replica");
    let done = tokio::time::timeout(Duration::from_secs(15), desk).await.expect("woken").expect("task").expect("wait");
    assert_eq!(done.status, "approved");
    assert!(done.tokens.is_some_and(|t| !t.access_token.is_empty()), "the desktop got its tokens");

    // Revocation: both replicas honour the token, then neither does.
    via_one.userinfo(&tokens.access_token).await.expect("one accepts it");
    via_two.userinfo(&tokens.access_token).await.expect("two accepts it");
    let device = via_lb.devices(session.as_str()).await.expect("devices").into_iter().find(|d| d.name == "split");
    via_lb.revoke_device(session.as_str(), &device.expect("the split device").id).await.expect("revoke");
    for (which, c) in [("one", &via_one), ("two", &via_two)] {
        let e = c.userinfo(&tokens.access_token).await.expect_err("revoked everywhere at once");
        assert_eq!(e.status(), Some(401), "replica {which}: {e}");
    }

    // Load through the balancer, and one replica killed in the middle of it.
    let approved = Arc::new(Mutex::new(Vec::<String>::new()));
    let refresh = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = tokio::task::JoinSet::new();
    for w in 0..6 {
        let session = via_lb.sign_in(&format!("w{w}"), PASSWORD).await.expect("worker signs in").session_token;
        let (lb, approved, refresh, stop) = (lb.clone(), approved.clone(), refresh.clone(), stop.clone());
        load.spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                if let Some(rt) = login(&lb, &session, &format!("w{w}-{n}"), &approved).await {
                    refresh.lock().expect("lock").push(rt);
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_kill = approved.lock().expect("lock").len();
    one.start_kill().expect("SIGKILL replica one");
    one.wait().await.expect("reaped");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    while load.join_next().await.is_some() {}
    let approved = approved.lock().expect("lock").clone();
    assert!(
        before_kill > 0 && approved.len() > before_kill,
        "logins ran before and after the kill: {before_kill} then {}",
        approved.len()
    );

    // Every acknowledged approval is a device; the balancer still serves; tokens issued before still refresh.
    let mut names = Vec::new();
    for w in 0..6 {
        let session = via_lb.sign_in(&format!("w{w}"), PASSWORD).await.expect("sign in after the kill").session_token;
        names.extend(via_lb.devices(session.as_str()).await.expect("devices").into_iter().map(|d| d.name));
    }
    for a in &approved {
        assert!(names.contains(a), "approved device {a} was lost");
    }
    let rt = refresh.lock().expect("lock").first().cloned().expect("a login completed");
    via_lb.refresh(&app(), &rt).await.expect("a refresh through the balancer after the kill");
    let out = data.latchkey("admin", &["audit", "verify"]).output().await.expect("admin audit verify");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("audit log intact"), "{text}");
}
