//! What operators watch: /metrics on its own listener, /readyz following the
//! database, and a request ID on every response.

use crate::backend_tests;
use crate::support::*;
use latchkey_proto::paths;

/// The value of the sample whose line starts with `series` (name and labels, as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
}

async fn scrape(app: &TestApp) -> String {
    let base = app.metrics_url.as_deref().expect("metrics listener");
    let resp = reqwest::get(format!("{base}/metrics")).await.expect("scrape");
    assert_eq!(resp.status(), 200);
    let ctype = resp.headers()["content-type"].to_str().expect("ascii").to_string();
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    resp.text().await.expect("body")
}

async fn metrics_count_requests_logins_and_refusals(b: Backend) {
    let sqlite = matches!(b, Backend::Sqlite);
    let app = spawn_app_with(b, |c| c.metrics_listen = Some("127.0.0.1:0".into())).await;
    app.login("alice", "openid").await;

    // A denied login, and wrong codes until the per-user limit refuses.
    let session = app.signed_in("bob").await;
    let auth = app.start_login("openid").await;
    app.client.decide_device_login(&session, &auth.user_code, false).await.expect("deny");
    for _ in 0..6 {
        let _ = app.client.lookup_device_login(&session, "BCDF-GHJK").await;
    }
    // An unmatched path is counted under one label, never by its own path.
    let http = reqwest::Client::new();
    assert_eq!(http.get(format!("{}/no/such/page-7f3a", app.url)).send().await.expect("get").status(), 404);
    // Metrics are not on the public listener.
    assert_eq!(http.get(format!("{}/metrics", app.url)).send().await.expect("get").status(), 404);

    let text = scrape(&app).await;
    let token = format!("http_requests_total{{route=\"{}\",method=\"POST\",status=\"200\"}}", paths::TOKEN);
    assert!(sample(&text, &token).unwrap_or(0.0) >= 1.0, "{token} in:\n{text}");
    let started = sample(&text, "latchkey_device_logins_total{outcome=\"started\"}");
    assert_eq!(started, Some(2.0), "{text}");
    assert!(sample(&text, "latchkey_device_logins_total{outcome=\"approved\"}").unwrap_or(0.0) >= 1.0, "{text}");
    assert_eq!(sample(&text, "latchkey_device_logins_total{outcome=\"denied\"}"), Some(1.0), "{text}");
    assert!(sample(&text, "latchkey_rate_limited_total{limit=\"code_entry\"}").unwrap_or(0.0) >= 1.0, "{text}");
    assert!(
        text.contains("http_request_duration_seconds_bucket{route=\"/oauth/token\",method=\"POST\",le=\""),
        "{text}"
    );
    assert_eq!(sample(&text, "latchkey_waiting_devices"), Some(0.0), "{text}");
    assert!(text.contains("route=\"unmatched\""), "{text}");
    assert!(!text.contains("page-7f3a"), "raw paths never become labels:\n{text}");
    assert!(sample(&text, "latchkey_audit_entries").unwrap_or(0.0) >= 5.0, "{text}");
    // The backend's own load: SQLite's writer, or PostgreSQL's pool.
    if sqlite {
        assert!(sample(&text, "latchkey_sqlite_commits_total").unwrap_or(0.0) >= 1.0, "{text}");
        assert!(sample(&text, "latchkey_sqlite_commit_seconds_total").unwrap_or(0.0) > 0.0, "{text}");
        assert_eq!(sample(&text, "latchkey_sqlite_writer_queue"), Some(0.0), "{text}");
    } else {
        assert!(sample(&text, "latchkey_pg_pool_connections{state=\"open\"}").unwrap_or(0.0) >= 1.0, "{text}");
        assert!(sample(&text, "latchkey_pg_pool_connections{state=\"max\"}").unwrap_or(0.0) >= 1.0, "{text}");
    }
}

/// A device waiting on the instant endpoint shows in the gauge; when its code
/// expires it is told so and counted; QR sign-ins are counted by outcome.
async fn metrics_count_waiting_devices_expiries_and_qr_sign_ins(b: Backend) {
    let app = spawn_app_outside_limits(b, |c| {
        c.metrics_listen = Some("127.0.0.1:0".into());
        c.device_code_lifetime = std::time::Duration::from_secs(3);
    })
    .await;
    let auth = app.start_login("openid").await;
    let waiter = {
        let (client, code) = (app.client.clone(), auth.device_code.clone());
        tokio::spawn(async move { client.wait_token(&device_app(), &code).await })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.store.notifier().waiting_subjects() == 0 {
        assert!(std::time::Instant::now() < deadline, "the device never started waiting");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let text = scrape(&app).await;
    assert_eq!(sample(&text, "latchkey_waiting_devices"), Some(1.0), "{text}");
    let told = waiter.await.expect("task").expect_err("expired");
    assert_eq!(told.code(), Some("expired_token"));
    let text = scrape(&app).await;
    assert_eq!(sample(&text, "latchkey_device_logins_total{outcome=\"expired\"}"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "latchkey_waiting_devices"), Some(0.0), "{text}");

    // QR sign-ins: one approved, one denied, from the phone's session.
    app.store
        .create_app(
            latchkey_store::AppRecord {
                client_id: "tray".into(),
                display_name: "Tray".into(),
                kind: latchkey_store::ClientKind::Public,
                secret_hash: None,
                grant_types: vec![latchkey_store::GrantType::DeviceCode],
                redirect_uris: vec![],
                app_url: Some(app.url.clone()),
                qr_sign_in: true,
                require_dpop: false,
                created_at: now(),
                post_logout_redirect_uris: Vec::new(),
                id_token_alg: Default::default(),
            },
            None,
            now(),
        )
        .await
        .expect("app");
    let session = app.signed_in("alice").await;
    let http = reqwest::Client::new();
    for decision in ["approve", "deny"] {
        let started: serde_json::Value = http
            .post(format!("{}/api/v1/pairings", app.url))
            .json(&serde_json::json!({"client_id": "tray"}))
            .send()
            .await
            .expect("start")
            .json()
            .await
            .expect("json");
        let phone_url = started["phone_url"].as_str().expect("phone url");
        let code = phone_url.rsplit('/').next().unwrap_or_default();
        let r = http
            .post(format!("{}/api/v1/pairings/decision", app.url))
            .bearer_auth(&session)
            .json(&serde_json::json!({"phone_code": code, "decision": decision}))
            .send()
            .await
            .expect("decide");
        assert_eq!(r.status(), 200, "{decision}");
    }
    let text = scrape(&app).await;
    assert_eq!(sample(&text, "latchkey_qr_sign_ins_total{outcome=\"started\"}"), Some(2.0), "{text}");
    assert_eq!(sample(&text, "latchkey_qr_sign_ins_total{outcome=\"approved\"}"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "latchkey_qr_sign_ins_total{outcome=\"denied\"}"), Some(1.0), "{text}");
    assert!(text.contains("route=\"/api/v1/pairings/decision\""), "{text}");
}

async fn metrics_are_off_by_default(b: Backend) {
    let app = spawn_app(b).await;
    assert!(app.metrics_url.is_none());
    let resp = reqwest::get(format!("{}/metrics", app.url)).await.expect("get");
    assert_eq!(resp.status(), 404);
}

/// The probe reads `users`; renaming that table away is, to the server, a
/// database that no longer answers its queries (on PostgreSQL the store's
/// pooled connections and prepared statements stay as they were, so this also
/// shows nothing stale is reused), and renaming it back is the database
/// recovering, with no restart and nothing cached.
async fn readyz_follows_the_database(b: Backend) {
    let app = spawn_app(b).await;
    let http = reqwest::Client::new();
    let ready = || async {
        let resp = http.get(format!("{}/readyz", app.url)).send().await.expect("get");
        let status = resp.status().as_u16();
        (status, resp.text().await.expect("body"))
    };
    assert_eq!(ready().await, (200, "ready".to_string()));
    assert_eq!(http.get(format!("{}/healthz", app.url)).send().await.expect("get").status(), 200);

    app.raw_sql("ALTER TABLE users RENAME TO users_away").await;
    let (status, body) = ready().await;
    assert_eq!(status, 503, "{body}");
    let err: latchkey_proto::oauth::ErrorBody = serde_json::from_str(&body).expect("JSON error body");
    assert_eq!(err.error, "not_ready");
    // Still alive, just not ready.
    assert_eq!(http.get(format!("{}/healthz", app.url)).send().await.expect("get").status(), 200);

    app.raw_sql("ALTER TABLE users_away RENAME TO users").await;
    assert_eq!(ready().await, (200, "ready".to_string()));
}

async fn every_response_carries_a_request_id(b: Backend) {
    let app = spawn_app(b).await;
    let http = reqwest::Client::new();
    let id_of = |resp: &reqwest::Response| {
        resp.headers().get("x-request-id").map(|v| v.to_str().expect("ascii").to_string()).expect("x-request-id")
    };
    let a = http.get(format!("{}/healthz", app.url)).send().await.expect("get");
    let b = http.get(format!("{}/no/such/page", app.url)).send().await.expect("get");
    let c = http.post(format!("{}{}", app.url, paths::TOKEN)).form(&[("grant_type", "nonsense")]).send().await;
    let c = c.expect("post");
    assert_eq!((a.status().as_u16(), b.status().as_u16(), c.status().as_u16()), (200, 404, 400));
    let ids = [id_of(&a), id_of(&b), id_of(&c)];
    assert!(ids.iter().all(|id| !id.is_empty()), "{ids:?}");
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "each request gets its own: {ids:?}");

    // A caller's own sane ID is kept; anything odd is replaced, not echoed.
    let sent = http.get(format!("{}/healthz", app.url)).header("x-request-id", "lb-4f2a.9:1").send().await;
    assert_eq!(id_of(&sent.expect("get")), "lb-4f2a.9:1");
    for odd in ["has space", "<script>", &"x".repeat(65)] {
        let resp = http.get(format!("{}/healthz", app.url)).header("x-request-id", odd).send().await.expect("get");
        let id = id_of(&resp);
        assert!(id != odd && !id.is_empty(), "{odd:?} came back as {id:?}");
    }
}

backend_tests!(
    metrics_count_requests_logins_and_refusals,
    metrics_count_waiting_devices_expiries_and_qr_sign_ins,
    metrics_are_off_by_default,
    readyz_follows_the_database,
    every_response_carries_a_request_id,
);
