//! `logins`: complete device logins at a fixed concurrency.
//!
//! Each worker repeats: `device_authorization` → (wait mode: start the
//! instant-endpoint call and let it reach the server) → approve through the
//! JSON API → tokens (from the waiter, or one RFC 8628 poll in poll mode).

use crate::procfs::{print_server, ServerReport, ServerWatch};
use crate::stats::{print_table, Samples, Summary};
use crate::Common;
use anyhow::bail;
use clap::{Args, ValueEnum};
use latchkey_client::{AppCredentials, Client, ClientError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the device gets its tokens after approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenVia {
    /// Latchkey's instant endpoint (`/oauth/device/wait`), parked before approval.
    Wait,
    /// One RFC 8628 token-endpoint poll after approval.
    Poll,
}

/// Flags of `logins`.
#[derive(Args, Debug, Clone)]
pub struct LoginsArgs {
    #[command(flatten)]
    common: Common,
    /// Measured logins.
    #[arg(long, default_value_t = 20_000)]
    logins: u64,
    /// Logins in flight at once (one worker each).
    #[arg(long, default_value_t = 64)]
    concurrency: u64,
    /// How tokens are fetched after approval.
    #[arg(long, value_enum, default_value_t = TokenVia::Wait)]
    token_via: TokenVia,
    /// Unmeasured logins first (fills the connection pool, caches, JIT-free but still warm).
    #[arg(long, default_value_t = 0)]
    warmup: u64,
    /// Wait mode: pause after starting the waiter so it is parked on the server before
    /// the approval is sent (a person takes seconds to approve). Not counted in any step,
    /// but part of the wall-clock time, so it lowers logins/s at low concurrency.
    #[arg(long, default_value_t = 2)]
    park_ms: u64,
    /// Give up after this many failed logins.
    #[arg(long, default_value_t = 100)]
    max_errors: u64,
    /// Afterwards (unmeasured), revoke every active device of every approver, so the
    /// next run starts under the per-user device cap.
    #[arg(long)]
    revoke_devices: bool,
}

/// Times of one login.
#[derive(Debug, Default, Clone)]
struct Times {
    authorize: Samples,
    approve: Samples,
    token: Samples,
    approve_to_token: Samples,
    full: Samples,
    full_without_park: Samples,
}

impl Times {
    fn extend(&mut self, o: &Times) {
        self.authorize.extend(&o.authorize);
        self.approve.extend(&o.approve);
        self.token.extend(&o.token);
        self.approve_to_token.extend(&o.approve_to_token);
        self.full.extend(&o.full);
        self.full_without_park.extend(&o.full_without_park);
    }
}

struct Shared {
    /// One client per source address; worker `w` uses `clients[w % len]`.
    clients: Vec<Client>,
    app: AppCredentials,
    scope: String,
    /// Approvers' sessions; login `i` is approved by `sessions[i % len]`.
    sessions: Vec<String>,
    via: TokenVia,
    park: Duration,
    next: AtomicU64,
    errors: AtomicU64,
    max_errors: u64,
}

/// A failed login: the step and what the server (or the network) said.
struct Failure(String);

fn fail(step: &str, e: ClientError) -> Failure {
    // The server's own words (grouped by them), without the parts that differ per login.
    Failure(match &e {
        ClientError::Server { status, error, description } => {
            let why: String = description.as_deref().unwrap_or("").chars().take(120).collect();
            format!("{step}: {error} (HTTP {status}): {why}")
        }
        other => format!("{step}: {other}"),
    })
}

/// Waits on the instant endpoint until the grant is decided; returns when tokens arrived.
async fn wait_for_tokens(client: Client, app: AppCredentials, device_code: String) -> Result<Instant, Failure> {
    loop {
        match client.wait_token(&app, &device_code).await {
            Ok(t) if !t.access_token.is_empty() => return Ok(Instant::now()),
            Ok(_) => return Err(Failure("token: empty access token".into())),
            Err(e) if e.code() == Some("authorization_pending") => continue,
            Err(e) => return Err(fail("token (wait)", e)),
        }
    }
}

async fn one_login(s: &Shared, client: &Client, i: u64, t: &mut Times) -> Result<(), Failure> {
    let session = &s.sessions[(i % s.sessions.len() as u64) as usize];
    let t0 = Instant::now();
    let auth = client.device_authorization(&s.app, &s.scope, None).await.map_err(|e| fail("authorize", e))?;
    let t1 = Instant::now();

    let waiter = match s.via {
        TokenVia::Wait => {
            let h = tokio::spawn(wait_for_tokens(client.clone(), s.app.clone(), auth.device_code.clone()));
            // Let the waiter's request go out (its task, then the connection task, must run).
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
            if !s.park.is_zero() {
                tokio::time::sleep(s.park).await;
            }
            Some(h)
        }
        TokenVia::Poll => None,
    };

    let t_approve = Instant::now();
    let decided = client.decide_device_login(session, &auth.user_code, true).await;
    let t_approved = Instant::now();
    if let Err(e) = decided {
        if let Some(h) = waiter {
            h.abort();
        }
        return Err(fail("approve", e));
    }

    let t_tokens = match waiter {
        Some(h) => match h.await {
            Ok(r) => r?,
            Err(e) => return Err(Failure(format!("token (wait): task failed: {e}"))),
        },
        None => {
            let tok = client.poll_token(&s.app, &auth.device_code).await.map_err(|e| fail("token (poll)", e))?;
            if tok.access_token.is_empty() {
                return Err(Failure("token: empty access token".into()));
            }
            Instant::now()
        }
    };

    let parked = t_approve.duration_since(t1);
    t.authorize.push(t1 - t0);
    t.approve.push(t_approved - t_approve);
    // In wait mode the tokens can land before the approval's own response does.
    t.token.push(t_tokens.saturating_duration_since(t_approved));
    t.approve_to_token.push(t_tokens - t_approve);
    t.full.push(t_tokens - t0);
    t.full_without_park.push((t_tokens - t0).saturating_sub(parked));
    Ok(())
}

async fn worker(s: Arc<Shared>, w: usize, limit: u64) -> (Times, BTreeMap<String, u64>) {
    let client = s.clients[w % s.clients.len()].clone();
    let mut times = Times::default();
    let mut errors = BTreeMap::new();
    loop {
        let i = s.next.fetch_add(1, Ordering::Relaxed);
        if i >= limit || s.errors.load(Ordering::Relaxed) >= s.max_errors {
            break;
        }
        if let Err(Failure(why)) = one_login(&s, &client, i, &mut times).await {
            s.errors.fetch_add(1, Ordering::Relaxed);
            *errors.entry(why).or_insert(0) += 1;
        }
    }
    (times, errors)
}

/// Runs `n` logins over `c` workers; returns the times, errors and wall time.
async fn phase(s: &Arc<Shared>, n: u64, c: u64) -> anyhow::Result<(Times, BTreeMap<String, u64>, Duration)> {
    s.next.store(0, Ordering::Relaxed);
    let started = Instant::now();
    let handles: Vec<_> = (0..c.min(n.max(1)) as usize).map(|w| tokio::spawn(worker(s.clone(), w, n))).collect();
    let mut times = Times::default();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for h in handles {
        let (t, e) = h.await?;
        times.extend(&t);
        for (k, v) in e {
            *errors.entry(k).or_insert(0) += v;
        }
    }
    Ok((times, errors, started.elapsed()))
}

#[derive(Serialize)]
struct Report {
    mode: &'static str,
    url: String,
    logins: u64,
    /// Logins run before the measured ones (counted by anything that watches the whole run).
    warmup: u64,
    concurrency: u64,
    token_via: TokenVia,
    park_ms: u64,
    completed: usize,
    failed: u64,
    errors: BTreeMap<String, u64>,
    wall_secs: f64,
    logins_per_sec: f64,
    authorize: Summary,
    approve: Summary,
    /// Approval response → tokens (wait) or the poll call (poll).
    token: Summary,
    /// Just before the approval is sent → the device holds its tokens.
    approve_to_token: Summary,
    full_login: Summary,
    full_login_without_park: Summary,
    load_generator_cpu_secs: Option<f64>,
    /// Share of the whole machine's CPU that was busy (server, load generator, database, rest).
    machine_cpu_busy_percent: Option<f64>,
    /// CPU used by PostgreSQL's processes (zero with SQLite).
    database_cpu_secs: f64,
    /// Busy CPU time of the machine not used by the server, the load generator or
    /// PostgreSQL: the kernel's own threads, and anything else running, which
    /// disturbs the measurement.
    other_cpu_secs: Option<f64>,
    server: Option<ServerReport>,
}

/// `latchkey-bench logins`.
pub async fn run(a: LoginsArgs) -> anyhow::Result<()> {
    if a.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let clients = a.common.clients()?;
    let sessions = a.common.sessions(&clients[0]).await?;
    let s = Arc::new(Shared {
        clients,
        app: a.common.app(),
        scope: a.common.scope.clone(),
        sessions,
        via: a.token_via,
        park: match a.token_via {
            TokenVia::Wait => Duration::from_millis(a.park_ms),
            TokenVia::Poll => Duration::ZERO,
        },
        next: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        max_errors: a.max_errors,
    });

    if a.warmup > 0 {
        let (_, errors, wall) = phase(&s, a.warmup, a.concurrency).await?;
        let failed: u64 = errors.values().sum();
        eprintln!("warm-up: {} logins in {:.2} s, {failed} failed", a.warmup, wall.as_secs_f64());
        if failed > 0 {
            for (why, n) in &errors {
                eprintln!("  {n} × {why}");
            }
            bail!("the warm-up failed; is the server up and the user an approver?");
        }
        s.errors.store(0, Ordering::Relaxed);
    }

    let watch = a.common.server_pid.map(ServerWatch::start);
    let me_cpu0 = crate::procfs::cpu_time("self");
    let machine = crate::procfs::MachineCpu::start();
    let db0 = crate::procfs::cpu_by_name("postgres");
    let (times, errors, wall) = phase(&s, a.logins, a.concurrency).await?;
    let db_cpu = crate::procfs::cpu_since(&db0, "postgres");
    let me_cpu = match (me_cpu0, crate::procfs::cpu_time("self")) {
        (Some(x), Some(y)) => Some(y.saturating_sub(x).as_secs_f64()),
        _ => None,
    };
    let machine_busy = machine.busy_percent();
    let server = match watch {
        Some(w) => Some(w.finish().await),
        None => None,
    };

    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let other_cpu = machine_busy.map(|b| {
        let busy = b / 100.0 * cores as f64 * wall.as_secs_f64();
        busy - me_cpu.unwrap_or(0.0) - server.as_ref().and_then(|s| s.cpu_secs).unwrap_or(0.0) - db_cpu
    });
    let completed = times.full.summary().count;
    let failed: u64 = errors.values().sum();
    let rate = completed as f64 / wall.as_secs_f64();
    let r = Report {
        mode: "logins",
        url: a.common.url.clone(),
        logins: a.logins,
        warmup: a.warmup,
        concurrency: a.concurrency,
        token_via: a.token_via,
        park_ms: if a.token_via == TokenVia::Wait { a.park_ms } else { 0 },
        completed,
        failed,
        errors,
        wall_secs: wall.as_secs_f64(),
        logins_per_sec: rate,
        authorize: times.authorize.summary(),
        approve: times.approve.summary(),
        token: times.token.summary(),
        approve_to_token: times.approve_to_token.summary(),
        full_login: times.full.summary(),
        full_login_without_park: times.full_without_park.summary(),
        load_generator_cpu_secs: me_cpu,
        machine_cpu_busy_percent: machine_busy,
        database_cpu_secs: db_cpu,
        other_cpu_secs: other_cpu,
        server,
    };

    let via = match a.token_via {
        TokenVia::Wait => format!("instant endpoint, waiter parked {} ms before approval", a.park_ms),
        TokenVia::Poll => "one token-endpoint poll after approval".to_string(),
    };
    println!("logins: {} at concurrency {} against {} (tokens via {via})", a.logins, a.concurrency, a.common.url);
    println!("  completed {completed}, failed {failed}, {:.2} s → {rate:.0} logins/s", wall.as_secs_f64());
    let token_label = match a.token_via {
        TokenVia::Wait => "token (approve response → tokens)",
        TokenVia::Poll => "token (poll call)",
    };
    print_table(&[
        ("authorize", r.authorize),
        ("approve", r.approve),
        (token_label, r.token),
        ("approval → token (send approve →)", r.approve_to_token),
        ("full login", r.full_login),
        ("full login minus park pause", r.full_login_without_park),
    ]);
    for (why, n) in &r.errors {
        println!("  error {n} × {why}");
    }
    if let Some(cpu) = me_cpu {
        println!("  load generator CPU: {cpu:.2} s ({:.3} ms per login)", cpu * 1000.0 / completed.max(1) as f64);
    }
    if db_cpu > 0.0 {
        println!("  PostgreSQL CPU: {db_cpu:.2} s ({:.3} ms per login)", db_cpu * 1000.0 / completed.max(1) as f64);
    }
    if let (Some(b), Some(other)) = (machine_busy, other_cpu) {
        println!("  machine CPU busy: {b:.0}% of {cores} cores; {other:.2} s of it by the kernel and other processes");
    }
    if let Some(sv) = &r.server {
        print_server(sv, Some((completed as f64, "login")));
    }
    if a.revoke_devices {
        let t = Instant::now();
        let n = crate::revoke_devices(&s.clients[0], &s.sessions).await?;
        eprintln!("revoked {n} devices in {:.1} s", t.elapsed().as_secs_f64());
    }
    if a.common.json {
        println!("{}", serde_json::to_string(&r)?);
    }
    if completed == 0 {
        bail!("no login completed");
    }
    Ok(())
}
