//! The activity charts, as a person and a screen reader meet them: the Devices
//! page's sign-ins per device and the admin Overview's logins per hour are SVG
//! images with a title and a description, their tables show the logins this
//! test made, and both pages pass axe-core.

use crate::backend_tests;
use crate::browser_support::*;
use crate::support::*;
use latchkey_client::{Client, DeviceParams};

/// One approved device login by `dev` (a keyed client: the same key is the same device).
async fn log_in(dev: &Client, app: &TestApp, session: &str, name: &str) {
    let params = DeviceParams {
        name: Some(name.into()),
        location: Some("rack 4".into()),
        platform: Some("linux-x86_64".into()),
        ..Default::default()
    };
    let auth = dev.device_authorization_as(&device_app(), "openid", &params).await.expect("device login");
    app.client.decide_device_login(session, &auth.user_code, true).await.expect("approve");
    dev.poll_token(&device_app(), &auth.device_code).await.expect("tokens");
}

/// The chart inside `section` is an image named by its title and described by its description.
async fn assert_chart(b: &Browser, section: &str, title: &str) {
    let svg = b.find(&format!("{section} svg[role='img']")).await;
    let labelled_by = svg.attr("aria-labelledby").await.expect("attr").expect("the chart is labelled");
    let ids: Vec<&str> = labelled_by.split_whitespace().collect();
    assert_eq!(ids.len(), 2, "title and description: {labelled_by}");
    let script = "return [document.getElementById(arguments[0]).textContent, document.getElementById(arguments[1]).textContent, document.getElementById(arguments[0]).tagName, document.getElementById(arguments[1]).tagName];";
    let got = b
        .webdriver()
        .execute(script, vec![serde_json::json!(ids[0]), serde_json::json!(ids[1])])
        .await
        .expect("read the chart's text");
    assert_eq!(got[2], "title");
    assert_eq!(got[3], "desc");
    assert!(got[0].as_str().is_some_and(|t| t.starts_with(title)), "{got}");
    assert!(got[1].as_str().is_some_and(|d| d.len() > 40), "a real description: {got}");
    assert!(b.has(&format!("{section} svg polyline, {section} svg path")).await, "the chart draws lines");
}

async fn charts_show_the_logins_a_person_made(b: Backend) {
    let keep = keep_screenshots(&b);
    let app = spawn_app(b).await;
    app.add_user("alice", true).await;
    let session = app.client.sign_in("alice", PASSWORD).await.expect("sign in").session_token;
    let server = app.keyed_client();
    for _ in 0..3 {
        log_in(&server, &app, &session, "build server").await;
    }
    let laptop = app.keyed_client();
    log_in(&laptop, &app, &session, "Alice's laptop").await;
    // One login denied, one left waiting.
    let denied = app.client.device_authorization(&device_app(), "openid", Some("stranger")).await.expect("start");
    app.client.decide_device_login(&session, &denied.user_code, false).await.expect("deny");
    app.start_login("openid").await;
    let devices = app.client.devices(&session).await.expect("devices");
    assert_eq!(devices.len(), 2, "a key signs in again as the same device: {devices:?}");
    let id_of = |name: &str| devices.iter().find(|d| d.name == name).map(|d| d.id.clone()).expect("listed");

    let chrome = Chrome::start().await;
    let desk = chrome.browser(DESKTOP).await;
    desk.goto(&format!("{}/devices", app.url)).await;
    desk.sign_in("alice", PASSWORD).await;
    desk.wait_text("main h1", "Devices").await;
    assert_chart(&desk, "#device-activity", "Sign-ins per device, last 30 days").await;
    for (name, today) in [("build server", "3"), ("Alice's laptop", "1")] {
        let row = format!("#activity-{}", id_of(name));
        assert_eq!(desk.text(&format!("{row} th")).await, name);
        for period in ["today", "week", "month"] {
            assert_eq!(desk.text(&format!("{row} td[data-period='{period}']")).await, today, "{name} {period}");
        }
    }
    assert!(desk.text("#device-activity caption").await.contains("4 in the last 30 days"));
    desk.assert_accessible("devices").await;
    desk.webdriver()
        .execute("document.getElementById('device-activity').scrollIntoView();", vec![])
        .await
        .expect("scroll to the chart");
    desk.keep_screenshot(keep, "device-activity-desktop").await;

    desk.click("nav a[href='/overview']").await;
    desk.wait_text("main h1", "Overview").await;
    assert_chart(&desk, "#login-activity", "Device logins per hour, last 7 days").await;
    for (outcome, n) in [("started", "6"), ("approved", "4"), ("denied", "1"), ("expired", "0")] {
        for period in ["day", "week"] {
            assert_eq!(desk.text(&format!("#outcome-{outcome} td[data-period='{period}']")).await, n, "{outcome}");
        }
    }
    assert_eq!(desk.text("#active-devices").await, "2");
    assert_eq!(desk.text("#active-users").await, "1");
    desk.assert_accessible("overview").await;
    desk.keep_screenshot(keep, "overview-desktop").await;
    chrome.stop().await;
}

/// The Overview is for admins: anyone else is refused.
async fn the_overview_is_for_admins_only(b: Backend) {
    let app = spawn_app(b).await;
    let session = app.signed_in("bob").await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("http");
    let signed_out = http.get(format!("{}/overview", app.url)).send().await.expect("get");
    assert_eq!(signed_out.status(), 303, "signed out: to the sign-in page");
    let cookie = format!("latchkey_session={session}");
    let bob = http.get(format!("{}/overview", app.url)).header("cookie", cookie).send().await.expect("get");
    assert_eq!(bob.status(), 403);
}

/// The checker the browser tests rely on does find a serious violation: a button with no name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accessibility_checker_finds_a_nameless_button() {
    let chrome = Chrome::start().await;
    let b = chrome.browser(DESKTOP).await;
    b.goto(
        "data:text/html,<!doctype html><html lang=en><title>t</title><main><h1>t</h1><button></button></main></html>",
    )
    .await;
    let found = b.accessibility_violations("a page with a nameless button").await;
    let ids: Vec<&str> = found.as_array().into_iter().flatten().filter_map(|v| v["id"].as_str()).collect();
    assert_eq!(ids, ["button-name"], "{found}");
    chrome.stop().await;
}

backend_tests!(charts_show_the_logins_a_person_made, the_overview_is_for_admins_only);
