//! The verification page over real HTTP, as a browser without JavaScript would use it.

use crate::backend_tests;
use crate::support::*;

async fn get(c: &reqwest::Client, url: &str) -> (u16, String, reqwest::header::HeaderMap) {
    let r = c.get(url).send().await.expect("get");
    let (s, h) = (r.status().as_u16(), r.headers().clone());
    (s, r.text().await.expect("body"), h)
}

async fn post(c: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> (u16, String, reqwest::header::HeaderMap) {
    let r = c.post(url).form(form).send().await.expect("post");
    let (s, h) = (r.status().as_u16(), r.headers().clone());
    (s, r.text().await.expect("body"), h)
}

async fn sign_in(app: &TestApp, c: &reqwest::Client, next: &str) {
    let (s, html, _) = get(c, &format!("{}/signin?next={}", app.url, urlencode(next))).await;
    assert_eq!(s, 200);
    let csrf = form_field(&html, "csrf");
    let (s, _, h) = post(
        c,
        &format!("{}/signin", app.url),
        &[("csrf", &csrf), ("next", next), ("username", "alice"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(s, 303, "signed in and redirected");
    assert_eq!(h.get("location").expect("location"), next);
    let cookie = h
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("latchkey_session="))
        .expect("session cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("x", s)]).unwrap_or_default().trim_start_matches("x=").to_string()
}

async fn verification_page_approves_a_device_in_two_deliberate_steps(b: Backend) {
    let app = spawn_app(b).await;
    app.add_user("alice", false).await;
    let auth = app.start_login("openid").await;
    let c = browser();

    // Signed out: the pre-filled link sends the person to sign in first, and back.
    let (s, _, h) = get(&c, &auth.verification_uri_complete).await;
    assert_eq!(s, 303);
    let location = h.get("location").expect("location").to_str().expect("ascii").to_string();
    assert!(location.starts_with("/signin?next="), "{location}");
    let back = format!("/device?user_code={}", auth.user_code);
    sign_in(&app, &c, &back).await;

    // Step 1: the code is pre-filled but must be confirmed against the device.
    let (s, html, h) = get(&c, &auth.verification_uri_complete).await;
    assert_eq!(s, 200);
    assert!(html.contains(&auth.user_code) && html.contains("matches"), "asks to check the code");
    assert_eq!(h.get("x-frame-options").expect("xfo"), "DENY");
    assert!(h.get("content-security-policy").expect("csp").to_str().unwrap_or("").contains("frame-ancestors 'none'"));
    let csrf = form_field(&html, "csrf");

    // Step 2: what is being approved, then the decision.
    let (s, html, _) =
        post(&c, &format!("{}/device", app.url), &[("csrf", &csrf), ("user_code", &auth.user_code)]).await;
    assert_eq!(s, 200);
    for shown in ["Latchkey CLI", "test device", "127.0.0.1", "latchkey-client/", "started this sign-in"] {
        assert!(html.contains(shown), "confirmation page shows {shown:?}");
    }
    // Approving without ticking the confirmation is refused.
    let (s, _, _) = post(
        &c,
        &format!("{}/device/decision", app.url),
        &[("csrf", &csrf), ("user_code", &auth.user_code), ("decision", "approve")],
    )
    .await;
    assert_eq!(s, 400);
    // A forged form (no CSRF token) is refused.
    let (s, _, _) = post(
        &c,
        &format!("{}/device/decision", app.url),
        &[("csrf", "forged"), ("user_code", &auth.user_code), ("decision", "approve"), ("confirm", "yes")],
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(
        app.client.poll_token(&device_app(), &auth.device_code).await.expect_err("still pending").code(),
        Some("authorization_pending")
    );

    let (s, html, _) = post(
        &c,
        &format!("{}/device/decision", app.url),
        &[("csrf", &csrf), ("user_code", &auth.user_code), ("decision", "approve"), ("confirm", "yes")],
    )
    .await;
    assert_eq!(s, 200);
    assert!(html.contains("Device approved"));
    app.client.poll_token(&device_app(), &auth.device_code).await.expect("tokens");
}

async fn wrong_code_on_the_page_says_so(b: Backend) {
    let app = spawn_app(b).await;
    app.add_user("alice", false).await;
    let c = browser();
    sign_in(&app, &c, "/device").await;
    let (_, html, _) = get(&c, &format!("{}/device", app.url)).await;
    let csrf = form_field(&html, "csrf");
    let (s, html, _) = post(&c, &format!("{}/device", app.url), &[("csrf", &csrf), ("user_code", "BCDF-GHJK")]).await;
    assert_eq!(s, 404);
    assert!(html.contains("no sign-in is waiting for this code"));
    let (s, html, _) = post(&c, &format!("{}/device", app.url), &[("csrf", &csrf), ("user_code", "hello")]).await;
    assert_eq!(s, 400);
    assert!(html.contains("not a valid code"));
}

async fn sign_in_form_needs_its_csrf_cookie(b: Backend) {
    let app = spawn_app(b).await;
    app.add_user("alice", false).await;
    // A cross-site form post has no CSRF cookie: refused, no session.
    let (s, _, h) = post(
        &browser(),
        &format!("{}/signin", app.url),
        &[("csrf", "x"), ("username", "alice"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(s, 403);
    assert!(h.get_all("set-cookie").iter().all(|v| !v.to_str().unwrap_or("").starts_with("latchkey_session=lks_")));
    // An open redirect through `next` is not possible.
    let c = browser();
    let (_, html, _) = get(&c, &format!("{}/signin?next=//evil.example", app.url)).await;
    assert_eq!(form_field(&html, "next"), "/");
}

async fn the_password_page_changes_it_and_signs_out_the_other_sessions(b: Backend) {
    let app = spawn_app(b).await;
    app.add_user("alice", false).await;
    let other = app.client.sign_in("alice", PASSWORD).await.expect("sign in").session_token;
    let c = browser();
    sign_in(&app, &c, "/password").await;
    let (s, html, _) = get(&c, &format!("{}/password", app.url)).await;
    assert_eq!(s, 200);
    let csrf = form_field(&html, "csrf");
    let url = format!("{}/password", app.url);
    let wrong = [("csrf", csrf.as_str()), ("current_password", "not it"), ("new_password", "new password 1")];
    let (s, html, _) = post(&c, &url, &wrong).await;
    assert_eq!(s, 403);
    assert!(html.contains("current password is wrong"), "shown on the page");
    let (s, _, _) =
        post(&c, &url, &[("csrf", "forged"), ("current_password", PASSWORD), ("new_password", "x1234567")]).await;
    assert_eq!(s, 403, "a forged form changes nothing");
    app.client.me(other.as_str()).await.expect("refusals change nothing");

    let right = [("csrf", csrf.as_str()), ("current_password", PASSWORD), ("new_password", "new password 1")];
    let (s, _, h) = post(&c, &url, &right).await;
    assert_eq!(s, 303);
    assert_eq!(h.get("location").expect("location"), "/password?done=1");
    let (s, html, _) = get(&c, &format!("{}/password?done=1", app.url)).await;
    assert_eq!(s, 200, "this browser stays signed in");
    assert!(html.contains("Password changed"));
    assert_eq!(app.client.me(other.as_str()).await.expect_err("other session").status(), Some(401));
    app.client.sign_in("alice", "new password 1").await.expect("new password");
}

backend_tests!(
    the_password_page_changes_it_and_signs_out_the_other_sessions,
    verification_page_approves_a_device_in_two_deliberate_steps,
    wrong_code_on_the_page_says_so,
    sign_in_form_needs_its_csrf_cookie,
);
