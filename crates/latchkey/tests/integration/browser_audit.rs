//! The Audit page in a real browser (headless chromium): a person reads who did
//! what by name, in sentences, and finds the raw ID one click away.

use crate::backend_tests;
use crate::browser_support::*;
use crate::support::*;
use fantoccini::Locator;

/// The audit row whose sentence is exactly `said`.
async fn row_saying(b: &Browser, said: &str) -> fantoccini::elements::Element {
    let rows = b.webdriver().find_all(Locator::Css("table.log tbody tr")).await.expect("rows");
    for r in rows {
        let cell = r.find(Locator::Css("td[data-label='What happened']")).await.expect("sentence cell");
        if cell.text().await.unwrap_or_default() == said {
            return r;
        }
    }
    panic!("no entry says {said:?}; the page shows:\n{}", b.body_text().await)
}

async fn audit_page_names_the_device_in_sentences(b: Backend) {
    let app = spawn_app(b).await;
    app.add_user("alice", false).await;
    let session = app.client.sign_in("alice", PASSWORD).await.expect("sign in").session_token;
    let build = approved_device(&app, session.as_str(), "build server", "rack 4").await;
    app.client.revoke_device(session.as_str(), &build).await.expect("revoke");

    let chrome = Chrome::start().await;
    let desk = chrome.browser(DESKTOP).await;
    desk.goto(&format!("{}/signin?next=%2Faudit", app.url)).await;
    desk.sign_in("alice", PASSWORD).await;
    desk.wait_text("main h1", "Audit log").await;

    // The registration and the revocation, each a sentence naming the device.
    let registered = row_saying(&desk, "You registered the device build server in rack 4").await;
    let revoked = row_saying(&desk, "You revoked build server (1 sign-in ended)").await;
    let name = revoked.find(Locator::Css("td[data-label='What happened'] a strong")).await.expect("the device's name");
    assert_eq!(name.text().await.expect("text"), "build server", "the device by name, emphasised");
    let body = desk.body_text().await;
    assert!(!body.contains(&build), "no raw ID in plain sight: {body}");
    assert!(!body.contains("families_revoked"), "no raw JSON in plain sight");

    // The time reads relatively, with the exact time on hover.
    let when = registered.find(Locator::Css("td[data-label='When'] time")).await.expect("a <time>");
    assert_eq!(when.text().await.expect("text"), "just now");
    let title = when.attr("title").await.expect("title").unwrap_or_default();
    assert!(title.ends_with(" UTC") && title.len() == "2026-12-01 00:00:00 UTC".len(), "{title}");
    assert!(when.attr("datetime").await.expect("datetime").is_some_and(|d| d.ends_with('Z')));

    // One click shows the raw ID, ready to copy.
    revoked.find(Locator::Css("details.ids summary")).await.expect("IDs").click().await.expect("open the IDs");
    let code = revoked.find(Locator::Css("details.ids code.copyable")).await.expect("IDs shown");
    let ids = revoked.find_all(Locator::Css("details.ids code.copyable")).await.expect("IDs");
    let mut shown = Vec::new();
    for c in ids {
        shown.push(c.text().await.unwrap_or_default());
    }
    assert!(shown.contains(&build), "the device's ID is shown: {shown:?}");
    assert!(!code.text().await.expect("text").is_empty());

    // Following the device's name filters the log to it.
    revoked
        .find(Locator::Css("td[data-label='What happened'] a"))
        .await
        .expect("a link")
        .click()
        .await
        .expect("follow");
    desk.wait_url(&format!("{}/audit?device=", app.url)).await;
    desk.wait_text("main", "Clear filters").await;
    let rows = desk.webdriver().find_all(Locator::Css("table.log tbody tr")).await.expect("rows");
    assert_eq!(rows.len(), 2, "the registration and the revocation: {}", desk.body_text().await);
    chrome.stop().await;
}

backend_tests!(audit_page_names_the_device_in_sentences);
