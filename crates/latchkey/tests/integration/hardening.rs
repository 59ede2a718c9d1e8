//! Abuse and edge cases: limits that hold under concurrency, spoofed headers,
//! redirects, odd bytes, and the refusals around devices.

use crate::backend_tests;
use crate::support::*;
use latchkey_client::AppCredentials;
use latchkey_proto::oauth::ErrorBody;
use std::sync::Arc;
use std::time::Duration;

async fn concurrent_wrong_codes_cannot_exceed_the_limit(b: Backend) {
    let app = spawn_app(b).await;
    let session = app.signed_in("mallory").await;
    let guesses = (0..60).map(|_| {
        let (c, s) = (app.client.clone(), session.clone());
        async move { c.lookup_device_login(&s, "BCDF-GHJK").await }
    });
    let results = futures::future::join_all(guesses).await;
    let tried = results.iter().filter(|r| r.as_ref().err().and_then(|e| e.status()) == Some(404)).count();
    let limited = results.iter().filter(|r| r.as_ref().err().and_then(|e| e.status()) == Some(429)).count();
    assert_eq!(tried, 5, "exactly the per-user allowance reached the database");
    assert_eq!(limited, 55);
    // Signing in again does not reset the allowance: it is per user.
    let again = app.client.sign_in("mallory", PASSWORD).await.expect("sign in").session_token;
    assert_eq!(app.client.lookup_device_login(&again, "BCDF-GHJK").await.expect_err("limited").status(), Some(429));
}

async fn failed_sign_ins_are_limited_and_right_ones_are_not(b: Backend) {
    let app = spawn_app(b).await;
    app.add_user("alice", false).await;
    for _ in 0..3 {
        app.client.sign_in("alice", PASSWORD).await.expect("successes do not count");
    }
    for _ in 0..10 {
        let e = app.client.sign_in("alice", "wrong password").await.expect_err("wrong");
        assert_eq!(e.status(), Some(401));
    }
    let e = app.client.sign_in("alice", PASSWORD).await.expect_err("locked for a while");
    assert_eq!((e.status(), e.code()), (Some(429), Some("too_many_requests")));
    // Only known usernames are written to the audit chain.
    let _ = app.client.sign_in("my password is hunter2", "x").await;
    let entries = app.store.audit_entries(0, 1000).await.expect("audit");
    assert!(entries.iter().all(|e| !e.detail.contains("hunter2")));
}

async fn device_authorizations_are_limited_per_network(b: Backend) {
    let app = spawn_app_with(b, |c| c.device_auth_per_minute = 3).await;
    for _ in 0..3 {
        app.start_login("").await;
    }
    let e = app.client.device_authorization(&device_app(), "", None).await.expect_err("limited");
    assert_eq!(e.status(), Some(429));
}

async fn forwarded_for_is_read_from_the_right(b: Backend) {
    let app = spawn_app_with(b, |c| c.trust_proxy_headers = true).await;
    let session = app.signed_in("alice").await;
    // The client claims 203.0.113.99; our proxy appended the real peer 198.51.100.66.
    let resp = reqwest::Client::new()
        .post(format!("{}/oauth/device_authorization", app.url))
        .header("x-forwarded-for", "203.0.113.99, 198.51.100.66")
        .form(&[("client_id", "latchkey-cli")])
        .send()
        .await
        .expect("send");
    let auth: latchkey_proto::oauth::DeviceAuthorization = resp.json().await.expect("json");
    let seen = app.client.lookup_device_login(&session, &auth.user_code).await.expect("lookup");
    assert_eq!(seen.requester_ip, "198.51.100.66");
    assert!(seen.different_network, "the approver (127.0.0.1) is elsewhere: warn loudly");
}

async fn sign_in_redirects_stay_on_this_server(b: Backend) {
    let app = spawn_app(b).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    for next in
        ["/%09/evil.example", "//evil.example", "/\\evil.example", "/%0d%0aSet-Cookie:x", "https://evil.example"]
    {
        let resp = http.get(format!("{}/signin?next={next}", app.url)).send().await.expect("send");
        assert_eq!(resp.status(), 200, "{next}");
        let html = resp.text().await.expect("body");
        assert!(html.contains("name=\"next\" value=\"/\""), "{next} was replaced by /");
    }
}

async fn odd_bytes_get_client_errors_not_500(b: Backend) {
    let app = spawn_app(b).await;
    let http = reqwest::Client::new();
    for body in [
        "client_id=a%00b&grant_type=refresh_token&refresh_token=x",
        "client_id=%FF&grant_type=refresh_token&refresh_token=x",
    ] {
        let resp = http
            .post(format!("{}/oauth/token", app.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("send");
        assert!(resp.status().is_client_error(), "{body}: {}", resp.status());
    }
    let session = app.signed_in("alice").await;
    for id in ["a%00b", "not-a-uuid", &"x".repeat(3000)] {
        let resp = http
            .get(format!("{}/api/v1/devices/{id}/locations", app.url))
            .bearer_auth(&session)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 404, "{id}");
    }
    let resp = http.get(format!("{}/device?user_code=a&user_code=b", app.url)).send().await.expect("send");
    assert_eq!(resp.status(), 400);
    let body: ErrorBody = resp.json().await.expect("an RFC 6749 body, not plain text");
    assert_eq!(body.error, "invalid_request");
    let resp = http.put(format!("{}/oauth/token", app.url)).send().await.expect("send");
    assert_eq!(resp.status(), 405);
    let body: ErrorBody = resp.json().await.expect("a JSON 405");
    assert_eq!(body.error, "method_not_allowed");
}

async fn public_clients_may_send_an_empty_secret(b: Backend) {
    let app = spawn_app(b).await;
    let empty = AppCredentials { client_id: "latchkey-cli".into(), client_secret: Some(String::new()) };
    app.client.device_authorization(&empty, "", None).await.expect("empty secret is no secret");
    let resp = reqwest::Client::new()
        .post(format!("{}/oauth/device_authorization", app.url))
        .basic_auth("latchkey-cli", Some(""))
        .form(&[("scope", "openid")])
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200, "Basic with an empty password, as requests-oauthlib sends it");
}

async fn a_device_revoked_before_collecting_gets_nothing(b: Backend) {
    let app = spawn_app(b).await;
    let session = app.signed_in("alice").await;
    let auth = app.start_login("").await;
    app.client.decide_device_login(&session, &auth.user_code, true).await.expect("approve");
    let device = app.client.devices(&session).await.expect("devices").pop().expect("the new device");
    app.client.revoke_device(&session, &device.id).await.expect("revoke");
    let e = app.client.poll_token(&device_app(), &auth.device_code).await.expect_err("no tokens");
    assert_eq!(e.code(), Some("access_denied"));
}

async fn the_device_cap_is_enforced_with_a_clear_error(b: Backend) {
    let app = spawn_app_with(b, |c| c.device_cap = 1).await;
    let session = app.signed_in("alice").await;
    let first = app.start_login("").await;
    app.client.decide_device_login(&session, &first.user_code, true).await.expect("first device");
    let second = app.start_login("").await;
    let e = app.client.decide_device_login(&session, &second.user_code, true).await.expect_err("cap");
    assert_eq!(e.status(), Some(409));
    assert!(e.to_string().contains("1 active devices") && e.to_string().contains("revoke"), "{e}");
    // Nothing changed: revoking one makes room, and the same code can then be approved.
    let d = app.client.devices(&session).await.expect("devices").pop().expect("device");
    app.client.revoke_device(&session, &d.id).await.expect("revoke");
    app.client.decide_device_login(&session, &second.user_code, true).await.expect("room now");
}

async fn a_slow_poller_that_waits_its_interval_is_not_told_to_slow_down(b: Backend) {
    let app = spawn_app_with(b, |c| c.poll_interval = std::time::Duration::from_secs(1)).await;
    let auth = app.start_login("").await;
    for _ in 0..3 {
        let e = app.client.poll_token(&device_app(), &auth.device_code).await.expect_err("pending");
        assert_eq!(e.code(), Some("authorization_pending"));
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
}

/// Behind https (its public URL), the server tells browsers to stay on https
/// (HSTS) and names its cookies `__Host-…`, which a sibling subdomain cannot
/// plant; an unprefixed cookie of the same name is not taken.
async fn https_servers_send_hsts_and_host_prefixed_cookies(b: Backend) {
    let app = spawn_app_with(b, |c| c.public_url = "https://login.example.test".into()).await;
    app.add_user("alice", false).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let page = http.get(format!("{}/signin", app.url)).send().await.expect("sign-in page");
    assert_eq!(page.headers()["strict-transport-security"], "max-age=31536000");
    let set: Vec<String> =
        page.headers().get_all("set-cookie").iter().map(|v| v.to_str().expect("ascii").to_string()).collect();
    let csrf_cookie = set.iter().find(|c| c.starts_with("__Host-latchkey_signin_csrf=")).expect("a __Host- cookie");
    assert!(csrf_cookie.contains("; Secure") && csrf_cookie.contains("Path=/") && !csrf_cookie.contains("Domain"));
    let csrf =
        csrf_cookie.split(';').next().and_then(|kv| kv.split_once('=')).map(|(_, v)| v.to_string()).expect("value");
    let signed_in = http
        .post(format!("{}/signin", app.url))
        .header("cookie", format!("__Host-latchkey_signin_csrf={csrf}"))
        .form(&[("csrf", csrf.as_str()), ("next", "/"), ("username", "alice"), ("password", PASSWORD)])
        .send()
        .await
        .expect("sign in");
    assert_eq!(signed_in.status(), 303);
    let session = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("__Host-latchkey_session="))
        .and_then(|c| c.split(';').next())
        .expect("a __Host- session cookie")
        .to_string();
    let with = |cookie: String| {
        let http = http.clone();
        let url = format!("{}/devices", app.url);
        async move { http.get(url).header("cookie", cookie).send().await.expect("devices").status().as_u16() }
    };
    assert_eq!(with(format!("__Host-latchkey_session={session}")).await, 200);
    assert_eq!(with(format!("latchkey_session={session}")).await, 303, "a planted unprefixed cookie is not taken");
}

/// Names and locations that hide text (zero-width and other format characters,
/// separators, the byte-order mark, floods of combining marks) are refused with
/// a 400 that says why, at login and on rename.
async fn invisible_characters_in_names_are_refused(b: Backend) {
    let app = spawn_app(b).await;
    app.login("alice", "openid").await;
    let session = app.client.sign_in("alice", PASSWORD).await.expect("sign in").session_token;
    let hidden = ["lap\u{200B}top", "\u{FEFF}laptop", "lap\u{2028}top", "e\u{301}\u{301}\u{301}\u{301}\u{301}"];
    for name in hidden {
        let params = latchkey_client::DeviceParams { name: Some(name.into()), ..Default::default() };
        let err = app.client.device_authorization_as(&device_app(), "openid", &params).await.expect_err(name);
        assert_eq!((err.status(), err.code()), (Some(400), Some("invalid_request")), "{name:?}: {err}");
    }
    let id = app.client.devices(&session).await.expect("devices")[0].id.clone();
    for name in hidden {
        let update = latchkey_proto::api::DeviceUpdate { name: Some(name.into()), ..Default::default() };
        let err = app.client.update_device(&session, &id, &update).await.expect_err(name);
        assert_eq!(err.status(), Some(400), "{name:?}: {err}");
        let update = latchkey_proto::api::DeviceUpdate { location: Some(name.into()), ..Default::default() };
        let err = app.client.update_device(&session, &id, &update).await.expect_err(name);
        assert_eq!(err.status(), Some(400), "{name:?}: {err}");
    }
}

/// A client that starts a request and never finishes its headers (slowloris),
/// or connects and says nothing, is dropped after the header deadline.
async fn a_client_that_trickles_its_headers_is_dropped(b: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(b, |c| c.header_read_timeout = Duration::from_secs(1)).await;
    let addr = app.url.trim_start_matches("http://").to_string();
    let mut trickle = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    trickle.write_all(b"GET /healthz HTTP/1.1\r\nHost: latchkey\r\nX-Slow: ").await.expect("write");
    let mut silent = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    for s in [&mut trickle, &mut silent] {
        let mut buf = [0u8; 512];
        let read = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
        let answered = read.expect("the server let go within its deadline");
        // Closed (0 bytes or a reset), or told 408 first; never a request served.
        if let Ok(n) = answered {
            assert!(n == 0 || String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"), "{n} bytes");
        }
    }
    // Whole requests are served as ever.
    assert_eq!(reqwest::get(format!("{}/healthz", app.url)).await.expect("healthz").status(), 200);
}

/// Past `--max-connections`, new connections wait to be accepted instead of
/// costing the server memory; they are served once others close.
async fn connections_past_the_cap_wait_their_turn(b: Backend) {
    let app = spawn_app_with(b, |c| c.max_connections = 2).await;
    let addr = app.url.trim_start_matches("http://").to_string();
    let first = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let second = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let quick = reqwest::Client::builder().timeout(Duration::from_millis(700)).build().expect("client");
    let refused = quick.get(format!("{}/healthz", app.url)).send().await;
    assert!(refused.is_err(), "a third connection is not served while two are open");
    drop((first, second));
    let served = reqwest::Client::new().get(format!("{}/healthz", app.url)).send().await.expect("served");
    assert_eq!(served.status(), 200);
}

/// At most `--waiters-per-code` requests wait on one device code at once; one
/// more gets 429 at once, and those waiting are answered as ever.
async fn only_a_few_requests_may_wait_on_one_code(b: Backend) {
    let app = spawn_app_with(b, |c| {
        c.wait_timeout = Duration::from_secs(2);
        c.waiters_per_code = 2;
    })
    .await;
    let auth = app.start_login("openid").await;
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let (c, code) = (app.client.clone(), auth.device_code.clone());
            tokio::spawn(async move { c.wait_token(&device_app(), &code).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let refused = app.client.wait_token(&device_app(), &auth.device_code).await.expect_err("a third waiter");
    assert_eq!(refused.status(), Some(429), "{refused}");
    for w in waiting {
        let answer = w.await.expect("task").expect_err("not approved");
        assert_eq!(answer.code(), Some("authorization_pending"), "{answer}");
    }
    // The slots are free again.
    let again = app.client.wait_token(&device_app(), &auth.device_code).await.expect_err("pending");
    assert_eq!(again.code(), Some("authorization_pending"));
}

/// A `latchkey-cli` device of the user signed in as `session`, with its own
/// key: its client, its access token, its device ID and its key.
async fn keyed_device(
    app: &TestApp,
    session: &str,
    name: &str,
) -> (latchkey_client::Client, String, String, Arc<latchkey_client::dpop::DeviceKey>) {
    let key = Arc::new(latchkey_client::dpop::DeviceKey::generate().expect("key"));
    let client = latchkey_client::Client::new(&app.url).expect("client").with_device_key(key.clone());
    let auth = client.device_authorization(&cli(), "openid", Some(name)).await.expect("authorize");
    app.client.decide_device_login(session, &auth.user_code, true).await.expect("approve");
    let tokens = client.poll_token(&cli(), &auth.device_code).await.expect("tokens");
    let me = client.me(latchkey_client::Auth::Access(&tokens.access_token)).await.expect("me");
    (client, tokens.access_token, me.device.expect("a device").id, key)
}

/// A refusal by `--waiters-per-network`: 429 `too_many_requests`, saying what to do.
fn assert_network_full(e: &latchkey_client::ClientError) {
    assert_eq!((e.status(), e.code()), (Some(429), Some("too_many_requests")), "{e}");
    let text = e.to_string();
    assert!(text.contains("your network already holds 2 waiting requests") && text.contains("retry"), "{text}");
}

/// Waits (up to 5 s) until the tests' network holds `n` long-polls on the server.
async fn until_held(app: &TestApp, n: usize) {
    for _ in 0..100 {
        if app.held_by_loopback() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the network holds {} waiters, not {n}", app.held_by_loopback());
}

/// At most `--waiters-per-network` long-polls are held at once for one client
/// network, over different codes: one more gets 429 at once; a finished wait
/// gives its place back.
async fn long_polls_are_capped_per_network(b: Backend) {
    let app = spawn_app_with(b, |c| {
        c.wait_timeout = Duration::from_secs(3);
        c.waiters_per_network = 2;
    })
    .await;
    let session = app.signed_in("alice").await;
    let (first, second, third) = (app.start_login("").await, app.start_login("").await, app.start_login("").await);
    let waiting: Vec<_> = [&first, &second]
        .into_iter()
        .map(|auth| {
            let (c, code) = (app.client.clone(), auth.device_code.clone());
            tokio::spawn(async move { c.wait_token(&device_app(), &code).await })
        })
        .collect();
    until_held(&app, 2).await;
    // A third code, under the per-code cap, is refused for its network.
    let refused = app.client.wait_token(&device_app(), &third.device_code).await.expect_err("a third waiter");
    assert_network_full(&refused);
    // Polling does not hold anything and is answered as ever.
    let polled = app.client.poll_token(&device_app(), &third.device_code).await.expect_err("pending");
    assert_eq!(polled.code(), Some("authorization_pending"), "{polled}");
    // Approving the first answers its wait at once, and its place is free again.
    app.client.decide_device_login(&session, &first.user_code, true).await.expect("approve");
    let mut waiting = waiting.into_iter();
    let answered = waiting.next().expect("first").await.expect("task").expect("tokens for the approved wait");
    assert!(!answered.access_token.is_empty());
    until_held(&app, 1).await;
    let again = {
        let (c, code) = (app.client.clone(), third.device_code.clone());
        tokio::spawn(async move { c.wait_token(&device_app(), &code).await })
    };
    until_held(&app, 2).await;
    app.client.decide_device_login(&session, &third.user_code, true).await.expect("approve");
    again.await.expect("task").expect("the new wait was held and answered");
    // The second ends at the timeout; then the network holds nothing.
    let timed_out = waiting.next().expect("second").await.expect("task").expect_err("not approved");
    assert_eq!(timed_out.code(), Some("authorization_pending"), "{timed_out}");
    until_held(&app, 0).await;
    assert_eq!(app.waiting_networks(), 0, "a network holding nothing has no entry");
}

/// Events pulls that wait and device channels count towards the same cap as
/// device waits; a pull that does not wait never does, and a closed channel
/// gives its place back.
async fn event_pulls_and_channels_count_towards_the_network_cap(b: Backend) {
    let app = spawn_app_with(b, |c| {
        c.wait_timeout = Duration::from_secs(2);
        c.waiters_per_network = 2;
    })
    .await;
    let session = app.signed_in("alice").await;
    let (client, token, device_id, key) = keyed_device(&app, &session, "laptop").await;
    let pull = |wait: u64| {
        let (c, t) = (client.clone(), token.clone());
        async move { c.pull_events(latchkey_client::Auth::Access(&t), 0, 10, wait).await }
    };
    let pulls: Vec<_> = (0..2).map(|_| tokio::spawn(pull(30))).collect();
    until_held(&app, 2).await;
    assert_network_full(&pull(30).await.expect_err("a third waiting pull"));
    let pending = app.start_login("").await;
    assert_network_full(&app.client.wait_token(&device_app(), &pending.device_code).await.expect_err("full"));
    pull(0).await.expect("a pull that does not wait is answered");
    for p in pulls {
        assert!(p.await.expect("task").expect("pulled at the timeout").events.is_empty());
    }
    until_held(&app, 0).await;

    // A channel holds a place for as long as it is open.
    let dir = std::env::temp_dir().join(format!("latchkey-hardening-{}", uuid::Uuid::new_v4()));
    let dev = latchkey_client::trusted::TrustedDevice::new(client.clone(), key, device_id, token.clone(), dir);
    let first = dev.channel(0).await.expect("a channel");
    let second = dev.channel(0).await.expect("another channel");
    until_held(&app, 2).await;
    let Err(e) = dev.channel(0).await else { panic!("a third channel is accepted") };
    assert!(e.to_string().contains("too_many_requests") && e.to_string().contains("429"), "{e}");
    assert_network_full(&pull(30).await.expect_err("and so is a waiting pull"));
    // A client that goes away gives its place back.
    drop(first);
    until_held(&app, 1).await;
    let third = dev.channel(0).await.expect("the place is free again");
    drop((second, third));
    until_held(&app, 0).await;
    assert_eq!(app.waiting_networks(), 0);
}

backend_tests!(
    long_polls_are_capped_per_network,
    event_pulls_and_channels_count_towards_the_network_cap,
    only_a_few_requests_may_wait_on_one_code,
    a_client_that_trickles_its_headers_is_dropped,
    connections_past_the_cap_wait_their_turn,
    invisible_characters_in_names_are_refused,
    https_servers_send_hsts_and_host_prefixed_cookies,
    concurrent_wrong_codes_cannot_exceed_the_limit,
    failed_sign_ins_are_limited_and_right_ones_are_not,
    device_authorizations_are_limited_per_network,
    forwarded_for_is_read_from_the_right,
    sign_in_redirects_stay_on_this_server,
    odd_bytes_get_client_errors_not_500,
    public_clients_may_send_an_empty_secret,
    a_device_revoked_before_collecting_gets_nothing,
    the_device_cap_is_enforced_with_a_clear_error,
    a_slow_poller_that_waits_its_interval_is_not_told_to_slow_down,
);
