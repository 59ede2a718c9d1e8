//! Budgets others cannot spend for everyone, DPoP proofs recorded only for real
//! credentials, and ten thousand idle connections against the real server.

use crate::backend_tests;
use crate::support::*;
use latchkey_client::dpop::DeviceKey;
use latchkey_client::Client;
use latchkey_server::config::CodeEntryLimits;
use std::sync::Arc;
use std::time::Duration;

/// A client of `app` whose requests come from `network` (through a trusted proxy's `X-Forwarded-For`).
fn client_on(app: &TestApp, network: &str) -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", network.parse().expect("header value"));
    let http = reqwest::Client::builder().default_headers(headers).build().expect("http client");
    Client::with_http(http, &app.url)
}

/// The status a failed call got.
fn status<T: std::fmt::Debug>(r: latchkey_client::ClientResult<T>) -> Option<u16> {
    r.expect_err("refused").status()
}

/// The server-wide wrong-code budget, spent by a few accounts on a few networks,
/// stops them and nobody else: someone on another network still enters codes,
/// typo included. (The defaults scaled down: 2 per user, 4 per network, 8 on
/// the server, 2 each while it is spent; the domain tests check the defaults.)
async fn a_few_accounts_cannot_spend_code_entry_for_everyone(b: Backend) {
    let app = spawn_app_with(b, |c| {
        c.trust_proxy_headers = true;
        c.code_entry_limits = CodeEntryLimits {
            per_user: 2,
            per_network: 4,
            global: 8,
            per_user_while_spent: 2,
            per_network_while_spent: 2,
            window_secs: 600,
        };
    })
    .await;
    let mut mallories = Vec::new();
    for i in 0..4 {
        let session = app.signed_in(&format!("mallory{i}")).await;
        let client = client_on(&app, &format!("203.0.113.{}", i % 2));
        for _ in 0..2 {
            assert_eq!(status(client.lookup_device_login(&session, "BCDF-GHJK").await), Some(404));
        }
        mallories.push(session);
    }
    // The budget is spent: those who spent it get nothing, on any network.
    let elsewhere = client_on(&app, "192.0.2.50");
    assert_eq!(status(elsewhere.lookup_device_login(&mallories[0], "BCDF-GHJK").await), Some(429));
    let fresh_account = app.signed_in("mallory-new").await;
    assert_eq!(
        status(client_on(&app, "203.0.113.1").lookup_device_login(&fresh_account, "BCDF-GHJK").await),
        Some(429)
    );
    // Alice has not been guessing: she mistypes once, then enters her code and approves.
    let auth = app.start_login("").await;
    let alice = app.signed_in("alice").await;
    let home = client_on(&app, "198.51.100.7");
    assert_eq!(status(home.lookup_device_login(&alice, "BCDF-GHJK").await), Some(404), "a typo is answered");
    home.lookup_device_login(&alice, &auth.user_code).await.expect("her own code is found");
    home.decide_device_login(&alice, &auth.user_code, true).await.expect("and approved");
    app.client.poll_token(&device_app(), &auth.device_code).await.expect("the device signs in");
}

/// An app's QR budget spent by twenty networks slows those networks down and
/// leaves every other network its own few starts a minute.
async fn twenty_networks_cannot_spend_an_apps_qr_budget_for_everyone(b: Backend) {
    // 3 per network per minute; 60 per app; 1 per network while the app's are spent.
    let app = spawn_app_with(b, |c| {
        c.trust_proxy_headers = true;
        c.pairings_per_minute = 3;
    })
    .await;
    crate::qr_api::qr_app(&app, "tray", true).await;
    for n in 0..20 {
        let bot = client_on(&app, &format!("203.0.113.{n}"));
        for _ in 0..3 {
            bot.start_pairing("tray").await.expect("within the network's share");
        }
    }
    assert_eq!(status(client_on(&app, "203.0.113.0").start_pairing("tray").await), Some(429));
    let desktop = client_on(&app, "198.51.100.7");
    desktop.start_pairing("tray").await.expect("another network still starts a QR sign-in");
    assert_eq!(status(desktop.start_pairing("tray").await), Some(429), "its share while the app's is spent");
}

/// A form POST to the token endpoint with `proof` in its `DPoP` header.
async fn token_request(base: &str, proof: &str, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("{base}{}", latchkey_proto::paths::TOKEN))
        .header("dpop", proof)
        .form(form)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

/// Proofs sent with device codes, refresh tokens or authorization codes that
/// do not exist are not recorded (in memory, nor in PostgreSQL's `once_used`);
/// a real proof is recorded, and replaying it is refused, also when two copies race.
async fn dpop_proofs_are_recorded_only_for_real_credentials(b: Backend) {
    let postgres = matches!(b, Backend::Postgres(_));
    let app = spawn_app(b).await;
    let session = app.signed_in("alice").await;
    let key = Arc::new(DeviceKey::generate().expect("key"));
    let keyed = Client::new(&app.url).expect("client").with_device_key(key.clone());
    let auth = keyed.device_authorization(&device_app(), "openid", Some("bound")).await.expect("authorize");
    app.client.decide_device_login(&session, &auth.user_code, true).await.expect("approve");
    let tokens = keyed.poll_token(&device_app(), &auth.device_code).await.expect("DPoP-bound tokens");
    let refresh_token = tokens.refresh_token.expect("a refresh token");

    let web = [latchkey_store::GrantType::AuthorizationCode];
    app.add_app("web", latchkey_store::ClientKind::Public, None, &web).await;
    let (remembered, stored) = (app.dpop_remembered(), app.rows("once_used").await);
    for i in 0..20 {
        let e = keyed.poll_token(&device_app(), &format!("no-such-device-code-{i}")).await.expect_err("unknown");
        assert_eq!((e.status(), e.code()), (Some(400), Some("invalid_grant")));
        let e = keyed.refresh(&device_app(), &format!("no-such-refresh-token-{i}")).await.expect_err("unknown");
        assert_eq!((e.status(), e.code()), (Some(400), Some("invalid_grant")));
        let proof = key.proof("POST", &format!("{}{}", app.url, latchkey_proto::paths::TOKEN), None).expect("proof");
        let form = [("grant_type", "authorization_code"), ("code", "no-such-code"), ("client_id", "web")];
        let (code, body) = token_request(&app.url, &proof, &form).await;
        assert_eq!((code, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    }
    assert_eq!(app.dpop_remembered(), remembered, "nothing remembered for credentials that do not exist");
    assert_eq!(app.rows("once_used").await, stored, "nor stored");

    // A real refresh, its proof sent twice at once: exactly one is served.
    let proof = key.proof("POST", &format!("{}{}", app.url, latchkey_proto::paths::TOKEN), None).expect("proof");
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.as_str()), ("client_id", DEVICE_APP)];
    let (first, second) = tokio::join!(token_request(&app.url, &proof, &form), token_request(&app.url, &proof, &form));
    let mut outcomes = [(first.0, first.1["error"].clone()), (second.0, second.1["error"].clone())];
    outcomes.sort_by_key(|o| o.0);
    assert_eq!(outcomes[0].0, 200, "{outcomes:?}");
    assert_eq!((outcomes[1].0, outcomes[1].1.as_str()), (400, Some("invalid_dpop_proof")), "{outcomes:?}");
    assert_eq!(app.dpop_remembered(), remembered + 1, "the real proof is remembered");
    if postgres {
        assert_eq!(app.rows("once_used").await, stored + 1, "and stored for every replica");
        // The same proof sent to another replica of the same database is refused there too.
        let replica = app.replica().await;
        let (code, body) = token_request(&replica.url, &proof, &form).await;
        assert_eq!((code, body["error"].as_str()), (400, Some("invalid_dpop_proof")), "{body}");
    }
}

/// The soft limit on open files of this process, from `/proc/self/limits`.
fn open_files_limit() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
    let line = limits.lines().find(|l| l.starts_with("Max open files")).expect("the open files line");
    line.split_whitespace().nth(3).and_then(|n| n.parse().ok()).unwrap_or(1024)
}

/// Open file descriptors of process `pid`.
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// Waits (at most 15 s) until `pid` holds fewer than `n` descriptors.
async fn until_fewer_files(pid: u32, n: usize) {
    for _ in 0..150 {
        if open_files(pid) < n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server still holds {} descriptors", open_files(pid));
}

/// 10,000 idle connections (or as many as the open-files limit allows) held
/// against the real `latchkey serve`, in its own process so each side has its
/// own descriptors: real requests are still served while they are held, and
/// when they close the server lets go of every one of them and serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_connections_do_not_stop_real_requests() {
    use futures::StreamExt;
    // Room for the test's own descriptors (and the server's, which inherits the limit).
    let idle = 10_000.min(open_files_limit().saturating_sub(500));
    let data = crate::crash::Data::fresh(Backend::Sqlite).await;
    let cap = (idle + 100).to_string();
    let extra = ["--max-connections", cap.as_str(), "--header-read-timeout", "1m"];
    let (server, url) = crate::crash::serve(&data, "127.0.0.1:0", &extra).await;
    let pid = server.id().expect("server pid");
    // The built-in CLI app requires DPoP.
    let client = Client::new(&url).expect("client").with_device_key(Arc::new(DeviceKey::generate().expect("key")));
    client.device_authorization(&cli(), "openid", Some("before")).await.expect("served before");
    let baseline = open_files(pid);

    let addr = url.trim_start_matches("http://").to_string();
    let held: Vec<tokio::net::TcpStream> = futures::stream::iter(0..idle)
        .map(|_| tokio::net::TcpStream::connect(addr.clone()))
        .buffer_unordered(256)
        .map(|c| c.expect("connect"))
        .collect()
        .await;
    assert_eq!(held.len(), idle);
    // The server accepted and holds them (nothing has been said on any). Not
    // necessarily every one: on a busy machine the kernel's accept queue can
    // overflow, and a handshake it dropped stays half-open on our side only.
    until_held(pid, baseline + idle * 9 / 10).await;

    let auth = client.device_authorization(&cli(), "openid", Some("during")).await.expect("served while they wait");
    assert!(!auth.user_code.is_empty());
    assert_eq!(reqwest::get(format!("{url}/healthz")).await.expect("healthz").status(), 200);

    drop(held);
    until_fewer_files(pid, baseline + 50).await;
    client.device_authorization(&cli(), "openid", Some("after")).await.expect("served after");
    if let crate::crash::Data::Sqlite(dir) = &data {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Waits (at most 15 s) until `pid` holds at least `n` descriptors.
async fn until_held(pid: u32, n: usize) {
    for _ in 0..150 {
        if open_files(pid) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server holds {} descriptors, not {n}", open_files(pid));
}

/// Starting a passkey sign-in stores a challenge for anyone who asks, so one
/// network may start only a few a minute; past that, 429 and nothing stored.
async fn passkey_sign_ins_started_are_limited_per_network(b: Backend) {
    let (app, url) = crate::browser_passkeys::spawn_on_localhost(b).await;
    let web = browser();
    let page = web.get(format!("{url}/signin")).send().await.expect("sign-in page").text().await.expect("html");
    let csrf = form_field(&page, "csrf");
    let start = || async {
        let r = web
            .post(format!("{url}/signin/passkey/options"))
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .expect("options");
        (r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap_or_default())
    };
    let allowed = latchkey_server::rate_limit::PASSKEY_STARTS_PER_MINUTE;
    for _ in 0..allowed {
        let (status, body) = start().await;
        assert_eq!(status, 200, "{body}");
        assert!(body["publicKey"]["challenge"].is_string(), "{body}");
    }
    let (status, body) = start().await;
    assert_eq!((status, body["error"].as_str()), (429, Some("too_many_requests")), "{body}");
    assert_eq!(app.rows("webauthn_ceremonies").await, i64::from(allowed), "the refused start stored nothing");
}

backend_tests!(
    passkey_sign_ins_started_are_limited_per_network,
    a_few_accounts_cannot_spend_code_entry_for_everyone,
    twenty_networks_cannot_spend_an_apps_qr_budget_for_everyone,
    dpop_proofs_are_recorded_only_for_real_credentials,
);
