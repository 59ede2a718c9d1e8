//! `soak`: many pending grants, many devices parked on the instant endpoint.
//!
//! 1. Creates `--pending` device grants (nobody approves them).
//! 2. Parks one waiter on `/oauth/device/wait` for each of the first `--waiters`
//!    grants; a waiter calls again when the server's wait timeout answers
//!    `authorization_pending`.
//! 3. Holds for `--hold-secs`, sampling the server's memory if `--server-pid` is given.
//! 4. Approves `--approve-sample` of the parked grants one after another and
//!    measures approval → tokens while everything else is still parked.

use crate::procfs::{print_server, ServerReport, ServerWatch};
use crate::stats::{print_table, Samples, Summary};
use crate::Common;
use anyhow::bail;
use clap::Args;
use latchkey_client::{AppCredentials, Client};
use latchkey_proto::oauth::DeviceAuthorization;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Flags of `soak`.
#[derive(Args, Debug, Clone)]
pub struct SoakArgs {
    #[command(flatten)]
    common: Common,
    /// Pending device grants to create.
    #[arg(long, default_value_t = 10_000)]
    pending: usize,
    /// Devices parked on the instant endpoint (on the first grants).
    #[arg(long, default_value_t = 1_000)]
    waiters: usize,
    /// How long to hold everything parked.
    #[arg(long, default_value_t = 20)]
    hold_secs: u64,
    /// Concurrency while creating the grants.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Parked grants approved at the end, one at a time, to time approval → tokens.
    #[arg(long, default_value_t = 100)]
    approve_sample: usize,
}

#[derive(Default)]
struct Counters {
    /// Wait calls currently awaiting an answer.
    in_flight: AtomicUsize,
    /// Wait calls made.
    calls: AtomicU64,
    /// Answers of `authorization_pending` (wait timeout reached; called again).
    pending_answers: AtomicU64,
    /// Anything else that went wrong.
    errors: AtomicU64,
}

async fn park(client: Client, app: AppCredentials, device_code: String, c: Arc<Counters>) -> Result<Instant, String> {
    loop {
        c.calls.fetch_add(1, Ordering::Relaxed);
        c.in_flight.fetch_add(1, Ordering::Relaxed);
        let r = client.wait_token(&app, &device_code).await;
        c.in_flight.fetch_sub(1, Ordering::Relaxed);
        match r {
            Ok(_) => return Ok(Instant::now()),
            Err(e) if e.code() == Some("authorization_pending") => {
                c.pending_answers.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                c.errors.fetch_add(1, Ordering::Relaxed);
                return Err(e.to_string());
            }
        }
    }
}

#[derive(Serialize)]
struct Report {
    mode: &'static str,
    url: String,
    pending: usize,
    waiters: usize,
    grants_created: usize,
    create_secs: f64,
    grants_per_sec: f64,
    parked_at_start_of_hold: usize,
    parked_at_end_of_hold: usize,
    hold_secs: u64,
    wait_calls: u64,
    pending_answers: u64,
    waiter_errors: u64,
    approve_sample: usize,
    approve_to_token: Summary,
    server_during_create: Option<ServerReport>,
    server_during_hold: Option<ServerReport>,
}

/// `latchkey-bench soak`.
pub async fn run(a: SoakArgs) -> anyhow::Result<()> {
    if a.waiters > a.pending {
        bail!("--waiters cannot exceed --pending");
    }
    let clients = a.common.clients()?;
    let client = clients[0].clone();
    let app = a.common.app();
    let sessions = a.common.sessions(&client).await?;

    // 1. Pending grants.
    let watch = a.common.server_pid.map(ServerWatch::start);
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let made: Arc<Mutex<Vec<DeviceAuthorization>>> = Arc::default();
    let workers: Vec<_> = (0..a.concurrency.max(1))
        .map(|w| {
            let client = clients[w % clients.len()].clone();
            let (app, next, made) = (app.clone(), next.clone(), made.clone());
            let (scope, n) = (a.common.scope.clone(), a.pending);
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let auth = client.device_authorization(&app, &scope, None).await?;
                    made.lock().unwrap_or_else(|p| p.into_inner()).push(auth);
                }
                Ok::<_, latchkey_client::ClientError>(())
            })
        })
        .collect();
    for w in workers {
        w.await??;
    }
    let create = started.elapsed();
    let server_during_create = match watch {
        Some(w) => Some(w.finish().await),
        None => None,
    };
    let grants = std::mem::take(&mut *made.lock().unwrap_or_else(|p| p.into_inner()));
    println!(
        "soak: {} pending grants created in {:.2} s ({:.0}/s)",
        grants.len(),
        create.as_secs_f64(),
        grants.len() as f64 / create.as_secs_f64()
    );

    // 2. Park the waiters.
    let counters = Arc::new(Counters::default());
    let mut parked = Vec::with_capacity(a.waiters);
    for (i, g) in grants.iter().take(a.waiters).enumerate() {
        let client = clients[i % clients.len()].clone();
        parked.push((
            g.user_code.clone(),
            tokio::spawn(park(client, app.clone(), g.device_code.clone(), counters.clone())),
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while counters.in_flight.load(Ordering::Relaxed) < a.waiters && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The calls are out; give the server a moment to take them all in and park them.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let parked_at_start = counters.in_flight.load(Ordering::Relaxed);
    println!("  {parked_at_start} of {} waiters parked; holding {} s", a.waiters, a.hold_secs);

    // 3. Hold.
    let watch = a.common.server_pid.map(ServerWatch::start);
    tokio::time::sleep(Duration::from_secs(a.hold_secs)).await;
    let server_during_hold = match watch {
        Some(w) => Some(w.finish().await),
        None => None,
    };
    let parked_at_end = counters.in_flight.load(Ordering::Relaxed);

    // 4. Approve a sample, one at a time, with everything else still parked.
    let mut latency = Samples::default();
    let mut rest = parked.into_iter();
    for (k, (user_code, handle)) in rest.by_ref().take(a.approve_sample).enumerate() {
        let t = Instant::now();
        client.decide_device_login(sessions[k % sessions.len()].as_str(), &user_code, true).await?;
        match handle.await? {
            Ok(got) => latency.push(got.saturating_duration_since(t)),
            Err(e) => bail!("a parked waiter failed: {e}"),
        }
    }
    for (_, handle) in rest {
        handle.abort();
    }

    let r = Report {
        mode: "soak",
        url: a.common.url.clone(),
        pending: a.pending,
        waiters: a.waiters,
        grants_created: grants.len(),
        create_secs: create.as_secs_f64(),
        grants_per_sec: grants.len() as f64 / create.as_secs_f64(),
        parked_at_start_of_hold: parked_at_start,
        parked_at_end_of_hold: parked_at_end,
        hold_secs: a.hold_secs,
        wait_calls: counters.calls.load(Ordering::Relaxed),
        pending_answers: counters.pending_answers.load(Ordering::Relaxed),
        waiter_errors: counters.errors.load(Ordering::Relaxed),
        approve_sample: latency.summary().count,
        approve_to_token: latency.summary(),
        server_during_create,
        server_during_hold,
    };
    println!(
        "  after the hold: {parked_at_end} parked, {} wait calls, {} re-calls after the wait timeout, {} errors",
        r.wait_calls, r.pending_answers, r.waiter_errors
    );
    if let Some(s) = &r.server_during_create {
        println!("  while creating the grants:");
        print_server(s, Some((grants.len() as f64, "grant")));
    }
    if let Some(s) = &r.server_during_hold {
        println!("  while holding {} pending grants and {parked_at_start} parked waiters:", grants.len());
        print_server(s, None);
    }
    println!("  approval → token with the others still parked ({} sequential approvals):", r.approve_sample);
    print_table(&[("approval → token", r.approve_to_token)]);
    if a.common.json {
        println!("{}", serde_json::to_string(&r)?);
    }
    Ok(())
}
