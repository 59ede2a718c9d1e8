//! `latchkey-bench`: a load generator for a running Latchkey server.
//!
//! * `logins`: N complete device logins (authorize → approve → token) at
//!   concurrency C; reports logins/s and latency percentiles per step.
//! * `events`: two devices of one user send overlapping captures at once, in
//!   batches; reports ingest and pull events/s.
//! * `sessions`: trusted sessions among up to 8 devices of one user; reports
//!   creation latency until every member joined, and relay messages/s and MB/s.
//! * `soak`: many pending grants and many clients parked on the instant
//!   endpoint; reports what the server holds in memory meanwhile.
//!
//! Every HTTP call goes through `latchkey-client`, over one shared
//! connection pool. Numbers are printed, never asserted.

mod events;
mod logins;
mod procfs;
mod sessions;
mod soak;
mod stats;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use latchkey_client::{AppCredentials, Client};
use std::time::Duration;

/// Load generator for a running Latchkey server.
#[derive(Parser)]
#[command(name = "latchkey-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run complete device logins and report throughput and latency per step.
    Logins(logins::LoginsArgs),
    /// Two devices send overlapping event captures at once; report ingest and pull events/s.
    Events(events::EventsArgs),
    /// Trusted sessions: creation latency until all members joined, and relay throughput.
    Sessions(sessions::SessionsArgs),
    /// Hold many pending grants and parked waiters; report server memory.
    Soak(soak::SoakArgs),
    /// Sign the approvers in and keep their sessions in --sessions-file (for later runs).
    SignIn(Common),
}

/// Flags every mode shares.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Base URL of the server (only ever point this at a server you run).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// User that approves the logins (signed in once through the JSON API). With
    /// `--users N` above 1, the approvers are `<username>-1` … `<username>-N`.
    #[arg(long, default_value = "bench")]
    pub username: String,
    /// That user's password (every approver has the same one).
    #[arg(long, env = "LATCHKEY_BENCH_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// How many users approve, in turn. Every approval registers a device for its
    /// approver, and a user may have only so many active devices (50 by default), so
    /// N logins need at least N/50 approvers (or `--revoke-devices` between runs).
    #[arg(long, default_value_t = 1)]
    pub users: usize,
    /// Spread the load over this many loopback source addresses (127.0.0.1, 127.0.0.2, …),
    /// one connection pool each, as if the devices and approvers were on different
    /// networks. The server limits some things per client network, e.g. at most 20
    /// approvals in flight per network (each holds a wrong-code reservation until it
    /// is decided), which one address at concurrency 64 exceeds.
    #[arg(long, default_value_t = 1)]
    pub source_addresses: u8,
    /// Keep the approvers' session tokens in this file, so later runs skip signing in
    /// (each sign-in costs the server a password hash).
    #[arg(long)]
    pub sessions_file: Option<std::path::PathBuf>,
    /// The app that logs in (a public app allowed the device-code grant, not requiring
    /// DPoP; `bench/run.sh` registers this one).
    #[arg(long, default_value = "latchkey-bench")]
    pub client_id: String,
    /// Scope requested by each login (`openid` adds an ID token to every response).
    #[arg(long, default_value = "openid profile offline_access")]
    pub scope: String,
    /// The server's process ID, to report its memory (VmRSS/VmHWM) and CPU time.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Also print the results as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
}

impl Common {
    pub fn app(&self) -> AppCredentials {
        AppCredentials::public(self.client_id.clone())
    }

    /// One client over a pool large enough for every worker and waiter.
    pub fn client(&self) -> anyhow::Result<Client> {
        Ok(self.clients()?.swap_remove(0))
    }

    /// One client per source address (`--source-addresses`), each with its own pool.
    pub fn clients(&self) -> anyhow::Result<Vec<Client>> {
        (0..self.source_addresses.max(1)).map(|i| self.client_from(i)).collect()
    }

    fn client_from(&self, i: u8) -> anyhow::Result<Client> {
        let mut b = reqwest::Client::builder();
        if self.source_addresses > 1 {
            b = b.local_address(std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, i.saturating_add(1))));
        }
        let http = b
            .user_agent(concat!("latchkey-bench/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(usize::MAX)
            .pool_idle_timeout(Duration::from_secs(120))
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            // The instant endpoint holds a request for up to its wait timeout (30 s by default).
            .timeout(Duration::from_secs(75))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Client::with_http(http, &self.url))
    }

    /// The approvers' names.
    fn usernames(&self) -> Vec<String> {
        if self.users <= 1 {
            vec![self.username.clone()]
        } else {
            (1..=self.users).map(|i| format!("{}-{i}", self.username)).collect()
        }
    }

    /// Signs every approver in once (or reads their sessions from `--sessions-file`);
    /// approvals take these sessions in turn.
    pub async fn sessions(&self, client: &Client) -> anyhow::Result<Vec<String>> {
        let names = self.usernames();
        if let Some(path) = &self.sessions_file {
            if let Ok(text) = std::fs::read_to_string(path) {
                let cached: Vec<String> = text.lines().map(str::to_string).filter(|l| !l.is_empty()).collect();
                if cached.len() == names.len() && client.me(cached[0].as_str()).await.is_ok() {
                    return Ok(cached);
                }
            }
        }
        let started = std::time::Instant::now();
        let mut sessions = vec![String::new(); names.len()];
        let mut tasks = tokio::task::JoinSet::new();
        let mut take = |r: Result<anyhow::Result<(usize, String)>, tokio::task::JoinError>| -> anyhow::Result<()> {
            let (i, token) = r??;
            sessions[i] = token;
            Ok(())
        };
        for (i, name) in names.iter().enumerate() {
            let (client, name, password) = (client.clone(), name.clone(), self.password.clone());
            tasks.spawn(async move {
                let s =
                    client.sign_in(&name, &password).await.with_context(|| format!("cannot sign in as {name:?}"))?;
                Ok::<_, anyhow::Error>((i, s.session_token))
            });
            // A few sign-ins at a time: each is a deliberately slow password hash on the server.
            if tasks.len() >= 4 {
                if let Some(r) = tasks.join_next().await {
                    take(r)?;
                }
            }
        }
        while let Some(r) = tasks.join_next().await {
            take(r)?;
        }
        if names.len() > 1 {
            eprintln!("signed in {} approvers in {:.1} s", names.len(), started.elapsed().as_secs_f64());
        }
        if let Some(path) = &self.sessions_file {
            std::fs::write(path, sessions.join("\n") + "\n")
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(sessions)
    }
}

/// `latchkey-bench sign-in`.
async fn sign_in(c: Common) -> anyhow::Result<()> {
    if c.sessions_file.is_none() {
        anyhow::bail!("sign-in needs --sessions-file to keep the sessions in");
    }
    let client = c.client()?;
    let watch = c.server_pid.map(procfs::ServerWatch::start);
    let t = std::time::Instant::now();
    let n = c.sessions(&client).await?.len();
    println!("sign-in: {n} approvers have sessions ({:.1} s)", t.elapsed().as_secs_f64());
    if let Some(w) = watch {
        procfs::print_server(&w.finish().await, Some((n as f64, "sign-in")));
    }
    Ok(())
}

/// Revokes every active device of every approver (between runs, so the next run's
/// approvals stay under the per-user device cap). Returns how many were revoked.
pub async fn revoke_devices(client: &Client, sessions: &[String]) -> anyhow::Result<usize> {
    let mut tasks = tokio::task::JoinSet::new();
    let mut revoked = 0;
    for s in sessions {
        let (client, s) = (client.clone(), s.clone());
        tasks.spawn(async move {
            let mut n = 0;
            for d in client.devices(s.as_str()).await? {
                if d.status == "active" {
                    client.revoke_device(s.as_str(), &d.id).await?;
                    n += 1;
                }
            }
            Ok::<_, latchkey_client::ClientError>(n)
        });
        while tasks.len() >= 16 {
            if let Some(r) = tasks.join_next().await {
                revoked += r??;
            }
        }
    }
    while let Some(r) = tasks.join_next().await {
        revoked += r??;
    }
    Ok(revoked)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Logins(a) => logins::run(a).await,
            Command::Soak(a) => soak::run(a).await,
            Command::Events(a) => events::run(a).await,
            Command::Sessions(a) => sessions::run(a).await,
            Command::SignIn(c) => sign_in(c).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
