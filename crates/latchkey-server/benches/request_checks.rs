//! What checking a device's request costs, per request: verifying the access
//! token's signature, the revocation check (is its sign-in still alive?), and
//! verifying the DPoP proof that must come with a device-bound token.
//!
//! `cargo bench -p latchkey-server --bench request_checks`; set
//! `LATCHKEY_TEST_POSTGRES_URL` to measure the revocation check on PostgreSQL too.
//! Prints nanoseconds per operation (median of 7 runs); results go in docs/benchmarks.md.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use latchkey_client::dpop::DeviceKey;
use latchkey_domain::device_grant::{Decision, GrantState};
use latchkey_domain::secret::{Secret, SecretHash, SecretKind};
use latchkey_server::config::ServerConfig;
use latchkey_server::state::{now, AppState};
use latchkey_server::tokens::{self, AccessClaims, ACCESS_TOKEN_TYP};
use latchkey_server::Server;
use latchkey_store::FamilyId;
use latchkey_store::*;
use std::sync::Arc;
use std::time::Instant;

const RUNS: usize = 7;

fn report(name: &str, per_op_ns: &mut [f64]) {
    per_op_ns.sort_by(|a, b| a.total_cmp(b));
    let median = per_op_ns[per_op_ns.len() / 2];
    println!("{name:<58} {median:>10.0} ns/op   (min {:.0}, max {:.0})", per_op_ns[0], per_op_ns[per_op_ns.len() - 1]);
}

fn time_sync(name: &str, n: usize, mut f: impl FnMut(usize)) {
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        for i in 0..n {
            f(i);
        }
        runs.push(t.elapsed().as_nanos() as f64 / n as f64);
    }
    report(name, &mut runs);
}

/// A device-bound access token for a fresh user and device, made through the store as a login would.
async fn bound_token(state: &AppState, key: &DeviceKey) -> (String, String) {
    let s = &state.store;
    let t = now();
    let user = NewUser {
        id: uuid::Uuid::now_v7().to_string(),
        username: format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
        password_hash: "x".into(),
        is_admin: false,
    };
    s.create_user(user.clone(), None, t).await.expect("user");
    let device_code = Secret::generate(SecretKind::DeviceCode, &mut rand::rngs::OsRng);
    let user_code = SecretHash::of(&uuid::Uuid::new_v4().to_string());
    let grant = NewDeviceGrant {
        id: uuid::Uuid::now_v7().to_string(),
        client_id: latchkey_proto::CLI_CLIENT_ID.into(),
        scope: String::new(),
        device_code_hash: device_code.hash(),
        user_code_hash: user_code.clone(),
        state: GrantState::new(t, 600, 5),
        requester: Requester { ip: "127.0.0.1".into(), user_agent: "bench".into(), device_name: Some("bench".into()) },
        device: DeviceRequest {
            jkt: Some(key.thumbprint()),
            public_jwk: Some(key.public_jwk().to_string()),
            ..Default::default()
        },
    };
    s.create_device_grant(grant, t).await.expect("grant");
    let decision = GrantDecision {
        user_code_hash: user_code,
        user_id: user.id,
        decision: Decision::Approve,
        ip: "127.0.0.1".into(),
        new_device_id: uuid::Uuid::now_v7().to_string(),
        device_cap: 50,
    };
    s.decide_device_grant(decision, t).await.expect("approve");
    let (_, mint) = tokens::new_family(state, t, true);
    let redeem = Redeem {
        device_code_hash: device_code.hash(),
        client_id: latchkey_proto::CLI_CLIENT_ID.into(),
        mode: RedeemMode::Poll,
        presented_jkt: Some(key.thumbprint()),
        mint,
    };
    let Redeemed::Tokens(subject) = s.redeem_device_grant(redeem, t).await.expect("redeem") else {
        panic!("no tokens");
    };
    let resp = tokens::respond(state, &subject, None, t).expect("tokens");
    (resp.access_token, subject.family_id)
}

async fn measure(label: &str, store: Arc<dyn Store>) {
    // The same checks `latchkey serve` applies: a benchmark of an impossible config measures nothing.
    let config = ServerConfig::new("http://bench.invalid");
    config.validate().expect("benchmark config is valid");
    let secret = latchkey_domain::at_rest::SecretKey::generate(&mut rand::rngs::OsRng);
    store.secure_keys(secret, latchkey_server::state::now()).await.expect("unlock");
    let server = Server::new(store, config).await.expect("server");
    let state = server.state().clone();
    let key = DeviceKey::generate().expect("key");
    let (token, family) = bound_token(&state, &key).await;
    let n = 20_000;

    if label == "SQLite" {
        time_sync("access token: EdDSA signature + claims (JWT verify)", n, |_| {
            let c = state.keys.verify::<AccessClaims>(&token, "http://bench.invalid", ACCESS_TOKEN_TYP);
            assert!(c.is_some());
        });
        let url = "http://bench.invalid/oauth/userinfo";
        let proofs: Vec<String> = (0..n * RUNS).map(|_| key.proof("GET", url, Some(&token)).expect("proof")).collect();
        let mut next = 0;
        time_sync("DPoP proof: signature, thumbprint, claims, replay window", n, |_| {
            let mut h = HeaderMap::new();
            h.insert("dpop", HeaderValue::from_str(&proofs[next]).expect("header"));
            next += 1;
            // On SQLite the check never waits (one process: its memory is the whole truth).
            let p = futures::executor::block_on(latchkey_server::dpop::verify(
                &state,
                &h,
                &Method::GET,
                "/oauth/userinfo",
                Some(&token),
                StatusCode::UNAUTHORIZED,
            ));
            assert!(matches!(p, Ok(Some(_))));
        });
        time_sync("  of which: making the proof (client side, for scale)", n, |_| {
            key.proof("GET", url, Some(&token)).expect("proof");
        });
    }

    let m = 5_000;
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        for _ in 0..m {
            assert!(state.store.family_active(FamilyId(&family), now()).await.expect("check"));
        }
        runs.push(t.elapsed().as_nanos() as f64 / m as f64);
    }
    report(&format!("revocation check ({label}): is the sign-in still alive?"), &mut runs);
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        for _ in 0..m {
            assert!(tokens::verify_access(&state, &token).await.expect("verify").is_some());
        }
        runs.push(t.elapsed().as_nanos() as f64 / m as f64);
    }
    report(&format!("access token + revocation check ({label})"), &mut runs);
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        println!(
            "one request's checks, single caller, {} cores",
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        );
        let dir = std::env::temp_dir().join(format!("latchkey-bench-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("dir");
        let sqlite =
            latchkey_store_sqlite::SqliteStore::open(dir.join("db.sqlite3"), latchkey_store_sqlite::Durability::Full)
                .await
                .expect("sqlite");
        measure("SQLite", Arc::new(sqlite)).await;
        let _ = std::fs::remove_dir_all(&dir);
        if let Ok(url) = std::env::var("LATCHKEY_TEST_POSTGRES_URL") {
            let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
            let pg = latchkey_store_postgres::PgStore::connect(&url, Some(&schema)).await.expect("postgres");
            measure("PostgreSQL", Arc::new(pg)).await;
            let _ = latchkey_store_postgres::PgStore::drop_schema(&url, &schema).await;
        }
    });
}
