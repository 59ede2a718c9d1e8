//! The Audit page as people read it: sentences with names (IDs one click away),
//! filters by device and date range, and the filtered view exported as JSON Lines.

use crate::backend_tests;
use crate::support::*;
use crate::web_pages::{get, sign_in};
use serde_json::Value;

/// The text of the "What happened" cells, tags removed, top to bottom.
fn sentences(html: &str) -> Vec<String> {
    let marker = "class=\"sentence\" data-label=\"What happened\">";
    html.match_indices(marker)
        .map(|(i, _)| html[i + marker.len()..].split("</td>").next().unwrap_or_default())
        .map(|cell| {
            let mut out = String::new();
            let mut in_tag = false;
            for c in cell.chars() {
                match c {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => out.push(c),
                    _ => {}
                }
            }
            out.replace("&#x27;", "'").replace("&amp;", "&")
        })
        .collect()
}

fn today() -> String {
    day_offset(0)
}

/// The UTC date `days` from now, as `YYYY-MM-DD`.
fn day_offset(days: i64) -> String {
    let shift = std::time::Duration::from_secs(days.unsigned_abs() * 86_400);
    let now = std::time::SystemTime::now();
    let t = if days < 0 { now - shift } else { now + shift };
    humantime::format_rfc3339_seconds(t).to_string()[..10].to_string()
}

/// Alice with a build server in rack 4 (later revoked) and a laptop.
async fn alice_with_devices(app: &TestApp) -> (reqwest::Client, String, String) {
    app.add_user("alice", false).await;
    let c = browser();
    sign_in(app, &c, "alice").await;
    let session = app.client.sign_in("alice", PASSWORD).await.expect("sign in").session_token;
    let build = approved_device(app, session.as_str(), "build server", "rack 4").await;
    let laptop = approved_device(app, session.as_str(), "laptop", "home").await;
    app.client.revoke_device(session.as_str(), &build).await.expect("revoke");
    (c, build, laptop)
}

async fn audit_page_tells_entries_with_names_and_filters_them(b: Backend) {
    let app = spawn_app(b).await;
    let (c, build, laptop) = alice_with_devices(&app).await;
    let audit = format!("{}/audit", app.url);

    let p = get(&c, &audit).await;
    assert_eq!(p.status, 200);
    let said = sentences(&p.html);
    assert!(said.iter().any(|s| s == "You revoked build server (1 sign-in ended)"), "{said:#?}");
    assert!(said.iter().any(|s| s == "You registered the device build server in rack 4"), "{said:#?}");
    assert!(said.iter().any(|s| s == "You registered the device laptop in home"), "{said:#?}");
    assert!(p.html.contains("<strong>build server</strong>"), "names are emphasised");
    assert!(p.html.contains(&format!("<code class=\"copyable\">{build}</code>")), "the raw ID is one click away");
    assert!(!p.html.contains("families_revoked\":1}</td>"), "no raw JSON as the entry's text");
    assert!(p.html.contains("<time datetime=\"") && p.html.contains("just now</time>"), "relative times");
    assert!(p.html.contains(&format!("<option value=\"{build}\">build server</option>")), "the device filter");

    // By device: only entries about it, and the choice stays selected; the export link keeps the filter.
    let p = get(&c, &format!("{audit}?device={laptop}")).await;
    let said = sentences(&p.html);
    assert!(!said.is_empty() && said.iter().all(|s| s.contains("laptop") && !s.contains("build server")), "{said:#?}");
    assert!(p.html.contains(&format!("<option value=\"{laptop}\" selected>laptop</option>")));
    assert!(p.html.contains(&format!("href=\"/audit/export?device={laptop}\"")), "export of the filtered view");

    // By date (UTC days, both ends included).
    let (yesterday, today, tomorrow) = (day_offset(-1), today(), day_offset(1));
    let all = sentences(&get(&c, &audit).await.html).len();
    let p = get(&c, &format!("{audit}?from={today}&to={today}")).await;
    assert_eq!(sentences(&p.html).len(), all, "today holds everything");
    assert!(p.html.contains(&format!("value=\"{today}\"")), "the dates stay in the form");
    assert!(sentences(&get(&c, &format!("{audit}?from={tomorrow}")).await.html).is_empty());
    assert!(sentences(&get(&c, &format!("{audit}?to={yesterday}")).await.html).is_empty());
    let p = get(&c, &format!("{audit}?to={yesterday}&device={build}&kind=device.revoked")).await;
    assert!(p.html.contains("No events match these filters"));
    for bad in ["from=yesterday", "to=2026-13-01", "from=2026-12-02&to=2026-12-01", "device=%22x%22"] {
        assert_eq!(get(&c, &format!("{audit}?{bad}")).await.status, 400, "{bad}");
    }

    let p = get(&c, &format!("{audit}?kind=device.registered&from={today}")).await;
    assert_eq!(sentences(&p.html).len(), 2);

    // Paging keeps every filter.
    let session = app.client.sign_in("alice", PASSWORD).await.expect("sign in").session_token;
    for i in 0..55 {
        let update = latchkey_proto::api::DeviceUpdate { name: Some(format!("laptop {i}")), location: None };
        app.client.update_device(session.as_str(), &laptop, &update).await.expect("rename");
    }
    let p = get(&c, &format!("{audit}?device={laptop}&from={today}")).await;
    let first = sentences(&p.html);
    assert_eq!(first.len(), 50);
    let at = p.html.find("rel=\"next\"").expect("an Older link");
    let older =
        p.html[..at].rsplit("href=\"").next().expect("href").split('"').next().expect("end").replace("&amp;", "&");
    assert!(older.starts_with(&format!("/audit?device={laptop}&from={today}&before=")), "{older}");
    let rest = sentences(&get(&c, &format!("{}{older}", app.url)).await.html);
    assert!(!rest.is_empty() && rest.iter().all(|s| s.contains("laptop")), "{rest:#?}");
    assert!(rest.iter().any(|s| s.starts_with("You registered the device laptop")), "the oldest on the last page");
    assert!(!rest.iter().any(|s| first.contains(s) && s.contains("to “laptop")), "no overlap");

    // Someone else's device: nothing of it, not even its name.
    app.add_user("bob", false).await;
    let bob = browser();
    sign_in(&app, &bob, "bob").await;
    let p = get(&bob, &format!("{audit}?device={laptop}")).await;
    assert_eq!(p.status, 200);
    assert!(sentences(&p.html).is_empty() && !p.html.contains("laptop"), "{}", p.html);
}

async fn audit_export_is_json_lines_of_the_filtered_view(b: Backend) {
    let app = spawn_app(b).await;
    let (c, build, laptop) = alice_with_devices(&app).await;
    let export = format!("{}/audit/export", app.url);

    let lines = |body: &str| -> Vec<Value> {
        body.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
    };
    let r = c.get(&export).send().await.expect("export");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let disposition = r.headers()["content-disposition"].to_str().expect("ascii").to_string();
    assert!(disposition.starts_with("attachment") && disposition.contains(".jsonl"), "{disposition}");
    let all = lines(&r.text().await.expect("body"));
    let alice = app.store.user_by_name("alice").await.expect("load").expect("alice").id;
    let own = app
        .store
        .audit_page(latchkey_store::AuditFilter { involving: Some(alice.clone()), limit: -1, ..Default::default() })
        .await
        .expect("own");
    let seqs = |v: &[Value]| v.iter().map(|l| l["seq"].as_i64().expect("seq")).collect::<Vec<_>>();
    assert_eq!(seqs(&all), own.iter().map(|e| e.seq).collect::<Vec<_>>(), "alice's own entries, newest first");
    let revoked = all.iter().find(|l| l["kind"] == "device.revoked").expect("the revocation");
    assert_eq!(revoked["sentence"], "You revoked build server (1 sign-in ended)");
    assert_eq!(revoked["subject"], build.as_str());
    assert_eq!(revoked["subject_name"], "build server");
    assert_eq!(revoked["actor"], alice.as_str());
    assert_eq!(revoked["actor_name"], "alice");
    assert_eq!(revoked["detail"]["families_revoked"], 1);
    assert!(revoked["at"].as_str().is_some_and(|t| t.ends_with('Z') && t.contains('T')), "RFC 3339");

    // Filters are honoured: device, kind, and dates.
    let body = c.get(format!("{export}?device={laptop}")).send().await.expect("export").text().await.expect("body");
    let of_laptop = lines(&body);
    assert!(!of_laptop.is_empty());
    assert!(of_laptop.iter().all(|l| l["subject"] == laptop.as_str() || l.to_string().contains(&laptop)));
    assert!(!of_laptop.iter().any(|l| l["subject"] == build.as_str()));
    let body =
        c.get(format!("{export}?kind=device.registered")).send().await.expect("export").text().await.expect("body");
    let registered = lines(&body);
    assert_eq!(registered.len(), 2);
    assert!(registered.iter().all(|l| l["kind"] == "device.registered"));
    let body =
        c.get(format!("{export}?from={}", day_offset(1))).send().await.expect("export").text().await.expect("body");
    assert_eq!(body, "", "nothing recorded tomorrow");
    let r = c.get(format!("{export}?kind=nonsense")).send().await.expect("export");
    assert_eq!(r.status(), 400);

    // More than one batch: every entry exactly once, in order.
    for i in 0..1_005 {
        let e = latchkey_domain::audit::AuditEvent::new(
            latchkey_domain::audit::AuditKind::SignInFailed,
            Some(alice.as_str()),
            Some(alice.as_str()),
        )
        .with_detail(format!("{{\"n\":{i}}}"));
        app.store.append_audit(e, now()).await.expect("append");
    }
    let body = c.get(&export).send().await.expect("export").text().await.expect("body");
    let long = lines(&body);
    let own = app
        .store
        .audit_page(latchkey_store::AuditFilter { involving: Some(alice.clone()), limit: -1, ..Default::default() })
        .await
        .expect("own");
    assert!(long.len() > 1_005);
    assert_eq!(seqs(&long), own.iter().map(|e| e.seq).collect::<Vec<_>>(), "each entry once, newest first");

    // Bob's export holds none of alice's entries; signed out, there is no export.
    app.add_user("bob", false).await;
    let bob = browser();
    sign_in(&app, &bob, "bob").await;
    let body = bob.get(&export).send().await.expect("export").text().await.expect("body");
    assert!(!body.contains(&build) && !body.contains(&alice), "{body}");
    let r = browser().get(&export).send().await.expect("export");
    assert_eq!(r.status(), 303);
}

/// Every page with a time shows it as a `<time>` reading relatively, never as escaped markup.
async fn pages_show_times_relatively(b: Backend) {
    let app = spawn_app(b).await;
    app.add_user("root", true).await;
    let alice = app.add_user("alice", false).await;
    let c = browser();
    sign_in(&app, &c, "root").await;
    let session = app.client.sign_in("root", PASSWORD).await.expect("sign in").session_token;
    let device = approved_device(&app, session.as_str(), "desk", "office").await;
    for path in [
        "/devices".to_string(),
        format!("/devices/{device}/revoke"),
        "/users".to_string(),
        format!("/users/{alice}/delete"),
        "/apps".to_string(),
        "/audit".to_string(),
    ] {
        let p = get(&c, &format!("{}{path}", app.url)).await;
        assert_eq!(p.status, 200, "{path}");
        assert!(p.html.contains("<time datetime=\"") && p.html.contains(" UTC\">"), "{path}: {}", p.html);
        assert!(!p.html.contains("&lt;time"), "{path} escaped its <time>: {}", p.html);
        assert!(!p.html.contains("</time> UTC"), "{path}: no stray UTC after a relative time");
    }
}

backend_tests!(
    audit_page_tells_entries_with_names_and_filters_them,
    audit_export_is_json_lines_of_the_filtered_view,
    pages_show_times_relatively
);
