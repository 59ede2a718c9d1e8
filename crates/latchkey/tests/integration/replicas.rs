//! Several stateless replicas over one PostgreSQL: wake-ups and exactly-once across them.

use crate::support::*;
use std::time::Duration;

fn pg() -> Option<Backend> {
    Backend::postgres()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_on_one_replica_wakes_a_device_waiting_on_another() {
    let Some(b) = pg() else { return };
    let a = spawn_app_with(b, |c| c.wait_timeout = Duration::from_secs(60)).await;
    let replica = a.replica().await;
    let session = a.signed_in("alice").await;
    let auth = a.start_login("").await;
    let waiter = {
        let (client, code) = (replica.client.clone(), auth.device_code.clone());
        tokio::spawn(async move { client.wait_token(&device_app(), &code).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.client.decide_device_login(&session, &auth.user_code, true).await.expect("approve on A");
    let got = tokio::time::timeout(Duration::from_secs(15), waiter).await.expect("woken across replicas");
    got.expect("task").expect("tokens on B");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pollers_on_two_replicas_get_tokens_exactly_once() {
    let Some(b) = pg() else { return };
    let a = spawn_app(b).await;
    let replica = a.replica().await;
    let session = a.signed_in("alice").await;
    let auth = a.start_login("").await;
    a.client.decide_device_login(&session, &auth.user_code, true).await.expect("approve");
    let polls = (0..20).map(|i| {
        let client = if i % 2 == 0 { a.client.clone() } else { replica.client.clone() };
        let code = auth.device_code.clone();
        async move { client.poll_token(&device_app(), &code).await }
    });
    let results = futures::future::join_all(polls).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_signing_keys() {
    let Some(b) = pg() else { return };
    let a = spawn_app(b).await;
    let replica = a.replica().await;
    assert_eq!(a.client.jwks().await.expect("a"), replica.client.jwks().await.expect("b"));
    let t = a.login("alice", "").await;
    replica.client.userinfo(&t.access_token).await.expect("B accepts A's token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dpop_proof_replayed_to_another_replica_is_refused() {
    let Some(b) = pg() else { return };
    let a = spawn_app(b).await;
    let replica = a.replica().await;
    let session = a.signed_in("alice").await;
    let key = std::sync::Arc::new(latchkey_client::dpop::DeviceKey::generate().expect("key"));
    let keyed = latchkey_client::Client::new(&a.url).expect("client").with_device_key(key.clone());
    let auth = keyed.device_authorization(&device_app(), "openid", Some("bound")).await.expect("authorize");
    a.client.decide_device_login(&session, &auth.user_code, true).await.expect("approve");
    let tokens = keyed.poll_token(&device_app(), &auth.device_code).await.expect("DPoP-bound tokens");
    // Both replicas answer for one public URL, so one proof is valid at either, once.
    let proof = key.proof("GET", &format!("{}/oauth/userinfo", a.url), Some(&tokens.access_token)).expect("proof");
    let send = |base: &str| {
        reqwest::Client::new()
            .get(format!("{base}/oauth/userinfo"))
            .header("authorization", format!("DPoP {}", tokens.access_token))
            .header("dpop", proof.clone())
            .send()
    };
    assert_eq!(send(&a.url).await.expect("first use").status(), 200);
    let replayed = send(&replica.url).await.expect("replay");
    assert_eq!(replayed.status(), 401, "the other replica knows the proof was used");
    let body: serde_json::Value = replayed.json().await.expect("error body");
    assert_eq!(body["error"], "invalid_dpop_proof", "{body}");
    // A fresh proof works on the other replica.
    let fresh = key.proof("GET", &format!("{}/oauth/userinfo", a.url), Some(&tokens.access_token)).expect("proof");
    let ok = reqwest::Client::new()
        .get(format!("{}/oauth/userinfo", replica.url))
        .header("authorization", format!("DPoP {}", tokens.access_token))
        .header("dpop", fresh)
        .send()
        .await
        .expect("fresh");
    assert_eq!(ok.status(), 200);
}
