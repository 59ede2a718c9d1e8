//! `events`: multi-machine sync under load. Two devices of one user send
//! captures of one exact kind at the same time, in batches, with a chosen
//! overlap (the share of each device's captures the other device also sends);
//! then one device pulls the whole stream. Reports ingest and pull events/s.
//!
//! The devices are real: latchkey-cli device logins with their own keys, so
//! every request carries a DPoP proof, as an app's devices' requests do.

use crate::procfs::{print_server, ServerReport, ServerWatch};
use crate::Common;
use anyhow::{bail, Context};
use clap::Args;
use latchkey_client::dpop::DeviceKey;
use latchkey_client::{AppCredentials, Auth, Client};
use latchkey_proto::api::{Capture, IdentityField, KindDeclaration};
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

/// Flags of `events`.
#[derive(Args, Debug)]
pub struct EventsArgs {
    #[command(flatten)]
    pub common: Common,
    /// Captures each device sends.
    #[arg(long, default_value_t = 100_000)]
    pub events: usize,
    /// Captures per request (1 to 1000).
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Share of each device's captures the other device sends too (0 to 1).
    #[arg(long, default_value_t = 0.5)]
    pub overlap: f64,
}

/// What one run measured.
#[derive(Debug, Serialize)]
struct EventsReport {
    captures_per_device: usize,
    batch: usize,
    overlap: f64,
    ingest_secs: f64,
    ingest_captures_per_sec: f64,
    stored_events: usize,
    created: usize,
    duplicate: usize,
    pulled: usize,
    pull_secs: f64,
    pull_events_per_sec: f64,
    server_ingest: Option<ServerReport>,
}

/// A device of the first approver: its client (holding its key) and its access token.
async fn device(c: &Common, session: &str, name: &str) -> anyhow::Result<(Client, String)> {
    let key = Arc::new(DeviceKey::generate().context("device key")?);
    let client = c.client()?.with_device_key(key);
    let cli = AppCredentials::public(latchkey_proto::CLI_CLIENT_ID);
    let auth = client.device_authorization(&cli, "openid", Some(name)).await.context("device authorization")?;
    c.client()?.decide_device_login(session, &auth.user_code, true).await.context("approve the device")?;
    let tokens = client.poll_token(&cli, &auth.device_code).await.context("device tokens")?;
    Ok((client, tokens.access_token))
}

fn capture(run: &str, n: usize) -> Capture {
    let mut identity = serde_json::Map::new();
    identity.insert("run".into(), run.into());
    identity.insert("n".into(), (n as i64).into());
    Capture { kind: "bench.item".into(), identity, start: None, end: None, id: None }
}

/// Sends `captures` in batches, one request at a time; returns (created, duplicate).
async fn send(client: &Client, token: &str, captures: &[Capture], batch: usize) -> anyhow::Result<(usize, usize)> {
    let (mut created, mut duplicate) = (0, 0);
    for chunk in captures.chunks(batch) {
        let r = client.push_events(Auth::Access(token), chunk).await.context("push")?;
        for res in r.results {
            match res.status.as_str() {
                "created" => created += 1,
                "duplicate" | "merged" => duplicate += 1,
                other => bail!("a capture was {other}: {:?}", res.reason),
            }
        }
    }
    Ok((created, duplicate))
}

/// Runs the benchmark.
pub async fn run(a: EventsArgs) -> anyhow::Result<()> {
    if !(1..=1000).contains(&a.batch) || !(0.0..=1.0).contains(&a.overlap) {
        bail!("--batch is 1 to 1000 and --overlap 0 to 1");
    }
    let c = &a.common;
    let sessions = c.sessions(&c.client()?).await?;
    let session = sessions.first().context("no approver session")?;
    let (desktop, dt) = device(c, session, "bench desktop").await?;
    let (laptop, lt) = device(c, session, "bench laptop").await?;
    let kind = KindDeclaration {
        identity: vec![
            IdentityField { name: "run".into(), ty: "string".into() },
            IdentityField { name: "n".into(), ty: "integer".into() },
        ],
        precision: "second".into(),
        merge: "exact".into(),
        retention_days: None,
    };
    desktop.declare_event_kind(Auth::Access(&dt), "bench.item", &kind).await.context("declare the kind")?;

    // Device A sends 0..E; device B starts where A's last `overlap` share begins.
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let e = a.events;
    let shift = ((1.0 - a.overlap) * e as f64).round() as usize;
    let from_a: Vec<Capture> = (0..e).map(|n| capture(&run_id, n)).collect();
    let from_b: Vec<Capture> = (shift..shift + e).map(|n| capture(&run_id, n)).collect();
    let expected = shift + e;

    let watch = c.server_pid.map(ServerWatch::start);
    let t0 = Instant::now();
    let (ra, rb) = tokio::join!(send(&desktop, &dt, &from_a, a.batch), send(&laptop, &lt, &from_b, a.batch));
    let ingest = t0.elapsed().as_secs_f64();
    let server_ingest = match watch {
        Some(w) => Some(w.finish().await),
        None => None,
    };
    let ((ca, da), (cb, db)) = (ra?, rb?);

    let t1 = Instant::now();
    let mut cursor = 0;
    let mut pulled = 0;
    loop {
        let page = laptop.pull_events(Auth::Access(&lt), cursor, 1000, 0).await.context("pull")?;
        if page.events.is_empty() {
            break;
        }
        pulled += page.events.len();
        cursor = page.cursor;
    }
    let pull = t1.elapsed().as_secs_f64();

    let report = EventsReport {
        captures_per_device: e,
        batch: a.batch,
        overlap: a.overlap,
        ingest_secs: ingest,
        ingest_captures_per_sec: (2 * e) as f64 / ingest,
        stored_events: expected,
        created: ca + cb,
        duplicate: da + db,
        pulled,
        pull_secs: pull,
        pull_events_per_sec: pulled as f64 / pull,
        server_ingest,
    };
    if report.created != expected {
        bail!("{} events were created, {expected} expected: the store kept duplicates or lost some", report.created);
    }
    println!(
        "events: 2 devices x {e} captures, batches of {}, overlap {:.0}%: {:.0} captures/s ({:.2} s); {} stored once, {} duplicates",
        a.batch,
        a.overlap * 100.0,
        report.ingest_captures_per_sec,
        ingest,
        report.created,
        report.duplicate
    );
    println!("pull: {pulled} events in {:.2} s: {:.0} events/s (pages of 1000)", pull, report.pull_events_per_sec);
    if let Some(s) = &report.server_ingest {
        print_server(s, Some(((2 * e) as f64, "capture")));
    }
    if c.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}
