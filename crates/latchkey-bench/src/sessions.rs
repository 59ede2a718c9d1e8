//! `sessions`: trusted sessions (issue 9). Up to 8 real `latchkey-cli` devices of
//! one user, each with its own key, its session key published, trusting each
//! other both ways and holding an open channel (setup, unmeasured). Then:
//!
//! * creation latency: for each member count, the time from `create_session`
//!   until every other member has joined (seen on its channel), and the create
//!   call alone;
//! * relay throughput: one sender (or several, each a different member) sends
//!   messages back to back while one member reads them off its channel; messages/s
//!   and MB/s of plaintext accepted by the server and delivered decrypted.
//!
//! Everything goes through `latchkey-client`'s `TrustedDevice`, as an app would.

use crate::procfs::{print_server, MachineCpu, ServerReport, ServerWatch};
use crate::stats::{print_table, Samples, Summary};
use crate::Common;
use anyhow::{bail, Context};
use clap::Args;
use latchkey_client::dpop::DeviceKey;
use latchkey_client::trusted::{TrustedDevice, Update};
use latchkey_client::{AppCredentials, Auth, Client};
use latchkey_proto::trust::SessionRequest;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Flags of `sessions`.
#[derive(Args, Debug)]
pub struct SessionsArgs {
    #[command(flatten)]
    pub common: Common,
    /// Member counts (creator included) to time session creation for.
    #[arg(long, value_delimiter = ',', default_value = "2,4,8")]
    pub members: Vec<usize>,
    /// Sessions created (and closed) per member count.
    #[arg(long, default_value_t = 50)]
    pub repeat: usize,
    /// Unmeasured sessions created first per member count.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Member counts of the relay sessions.
    #[arg(long, value_delimiter = ',', default_value = "2,8")]
    pub relay_members: Vec<usize>,
    /// Messages per relay run (in all, split over the senders).
    #[arg(long, default_value_t = 2000)]
    pub messages: usize,
    /// Plaintext sizes of the relay runs, in bytes (at least 8, at most 65 508).
    #[arg(long, value_delimiter = ',', default_value = "1024,16384")]
    pub sizes: Vec<usize>,
    /// Concurrent senders of the concurrent variant (run where the session has more members).
    #[arg(long, default_value_t = 4)]
    pub senders: usize,
    /// Give up on a join or a message after this many seconds without progress.
    #[arg(long, default_value_t = 15)]
    pub stall_secs: u64,
}

/// Creation latency for one member count.
#[derive(Debug, Serialize)]
struct CreationRow {
    members: usize,
    /// `create_session` alone (plan, seal, create).
    create: Summary,
    /// From the start of `create_session` until the last other member joined.
    all_joined: Summary,
}

/// One relay run.
#[derive(Debug, Serialize)]
struct RelayRow {
    members: usize,
    senders: usize,
    message_bytes: usize,
    messages: usize,
    send_secs: f64,
    send_messages_per_sec: f64,
    send_mb_per_sec: f64,
    received: usize,
    gaps: usize,
    delivered_secs: f64,
    delivered_messages_per_sec: f64,
    delivered_mb_per_sec: f64,
    /// Latency of one `send` call (encrypt, relay, keep the counter).
    send_call: Summary,
    machine_cpu_busy_percent: Option<f64>,
    /// Server CPU (user + system) per message sent, in ms.
    server_cpu_ms_per_message: Option<f64>,
}

/// What one run measured.
#[derive(Debug, Serialize)]
struct SessionsReport {
    mode: &'static str,
    url: String,
    devices: usize,
    setup_secs: f64,
    repeat: usize,
    creation: Vec<CreationRow>,
    relay: Vec<RelayRow>,
    server_creation: Option<ServerReport>,
    server_relay: Option<ServerReport>,
    refused_channel_events: usize,
}

/// What a member's channel showed, reduced to what the run needs.
#[derive(Debug)]
enum Seen {
    Joined(String),
    /// A message: session, sender tag and index (from the plaintext), plaintext bytes.
    Message(String, u32, u32, usize),
    Gap,
    /// The library refused an event (the channel goes on), e.g. a message of a session already closed.
    Refused(String),
    Failed(String),
}

/// One observation, stamped when the member's task handled it.
#[derive(Debug)]
struct Note {
    member: usize,
    at: Instant,
    seen: Seen,
}

/// A member: its trusted device and where it keeps its local state.
struct Member {
    dev: TrustedDevice,
    id: String,
}

/// An HTTP client without an overall timeout: the channels stay open for the whole run.
fn http(c: &Common) -> anyhow::Result<Client> {
    let http = reqwest::Client::builder()
        .user_agent(concat!("latchkey-bench/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(usize::MAX)
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .context("cannot build the HTTP client")?;
    Ok(Client::with_http(http, &c.url))
}

/// Logs in one `latchkey-cli` device with its own key, approved by `session`.
async fn member(c: &Common, approver: &Client, session: &str, name: &str, dir: PathBuf) -> anyhow::Result<Member> {
    let key = Arc::new(DeviceKey::generate().context("device key")?);
    let client = http(c)?.with_device_key(key.clone());
    let cli = AppCredentials::public(latchkey_proto::CLI_CLIENT_ID);
    let auth = client.device_authorization(&cli, "openid", Some(name)).await.context("device authorization")?;
    approver.decide_device_login(session, &auth.user_code, true).await.context("approve the device")?;
    let tokens = client.poll_token(&cli, &auth.device_code).await.context("device tokens")?;
    let me = client.me(Auth::Access(&tokens.access_token)).await.context("me")?;
    let id = me.device.context("the token names no device")?.id;
    let dev = TrustedDevice::new(client, key, id.clone(), tokens.access_token, dir);
    dev.publish_session_key().await.context("publish the session key")?;
    Ok(Member { dev, id })
}

/// `from` trusts `to`'s current key (the bench stands in for the user comparing fingerprints).
async fn trust(from: &Member, to: &Member) -> anyhow::Result<()> {
    let keys = from.dev.device_keys(&to.id).await.context("device keys")?;
    from.dev.trust(&keys).await.context("trust")?;
    Ok(())
}

/// Pumps member `i`'s channel until it ends, handling every event as the library does.
async fn pump(i: usize, dev: TrustedDevice, tx: mpsc::UnboundedSender<Note>) {
    let mut ch = match dev.channel(0).await {
        Ok(ch) => ch,
        Err(e) => {
            let _ = tx.send(Note { member: i, at: Instant::now(), seen: Seen::Failed(format!("channel: {e}")) });
            return;
        }
    };
    loop {
        let seen = match dev.next_update(&mut ch).await {
            None => Seen::Failed("the channel ended".into()),
            Some(Err(e)) => Seen::Refused(e.to_string()),
            Some(Ok(Update::Joined { session_id, .. })) => Seen::Joined(session_id),
            Some(Ok(Update::Message(r))) => {
                let (tag, n) = header(&r.plaintext);
                Seen::Message(r.session_id, tag, n, r.plaintext.len())
            }
            Some(Ok(Update::Gap { .. })) => Seen::Gap,
            Some(Ok(_)) => continue,
        };
        let end = matches!(seen, Seen::Failed(_));
        if tx.send(Note { member: i, at: Instant::now(), seen }).is_err() || end {
            return;
        }
    }
}

/// The sender tag and message index at the start of a bench message.
fn header(p: &[u8]) -> (u32, u32) {
    let word = |r: std::ops::Range<usize>| p.get(r).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
    (word(0..4).unwrap_or(u32::MAX), word(4..8).unwrap_or(u32::MAX))
}

/// Channel events the library refused during the run.
static REFUSED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Waits for the next note, failing after `stall` without one or on a channel failure.
async fn next_note(rx: &mut mpsc::UnboundedReceiver<Note>, stall: Duration) -> anyhow::Result<Note> {
    match tokio::time::timeout(stall, rx.recv()).await {
        Err(_) => bail!("nothing arrived on any channel for {} s", stall.as_secs()),
        Ok(None) => bail!("every channel ended"),
        Ok(Some(Note { member, seen: Seen::Failed(e), .. })) => bail!("member {member}'s channel: {e}"),
        Ok(Some(Note { member, seen: Seen::Refused(e), .. })) => {
            // Messages still queued for a session its creator just closed (and forgot) land here.
            REFUSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if REFUSED.load(std::sync::atomic::Ordering::Relaxed) <= 3 {
                eprintln!("note: member {member}'s library refused a channel event: {e}");
            }
            Box::pin(next_note(rx, stall)).await
        }
        Ok(Some(n)) => Ok(n),
    }
}

/// Creates a session of `members[0]` with `members[1..n]`; returns its ID, the
/// create call's time and the time until every other member joined.
async fn create(
    members: &[Member],
    n: usize,
    rx: &mut mpsc::UnboundedReceiver<Note>,
    stall: Duration,
) -> anyhow::Result<(String, Duration, Duration)> {
    let creator = &members[0];
    let req =
        SessionRequest { targets: members[1..n].iter().map(|m| m.id.clone()).collect(), ..SessionRequest::default() };
    let t0 = Instant::now();
    let made = creator.dev.create_session(&req).await.context("create a session")?;
    let create = t0.elapsed();
    let Some(s) = made.session else {
        bail!("the session was not made: {:?}", made.targets);
    };
    let mut waiting: Vec<bool> = (0..members.len()).map(|i| (1..n).contains(&i)).collect();
    let mut left = n - 1;
    let mut last = t0;
    while left > 0 {
        let note = next_note(rx, stall).await.with_context(|| format!("waiting for {left} joins"))?;
        if let Seen::Joined(id) = &note.seen {
            if *id == s.id && waiting[note.member] {
                waiting[note.member] = false;
                left -= 1;
                last = last.max(note.at);
            }
        }
    }
    Ok((s.id, create, last.saturating_duration_since(t0)))
}

/// A bench message: sender tag, index, then filler up to `size` bytes.
fn payload(tag: u32, n: u32, size: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(size);
    p.extend_from_slice(&tag.to_le_bytes());
    p.extend_from_slice(&n.to_le_bytes());
    p.resize(size.max(8), 0x5a);
    p
}

/// Sends `count` messages back to back as `dev`; returns each call's latency.
async fn send_all(dev: TrustedDevice, session: String, tag: u32, count: usize, size: usize) -> anyhow::Result<Samples> {
    let mut times = Samples::default();
    for n in 0..count {
        let p = payload(tag, u32::try_from(n)?, size);
        let t = Instant::now();
        dev.send(&session, &p).await.with_context(|| format!("send message {n}"))?;
        times.push(t.elapsed());
    }
    Ok(times)
}

/// One relay run: `senders` members (1 to n-2, or the creator alone) send `messages` in
/// all while the session's last member reads them.
async fn relay(
    a: &SessionsArgs,
    members: &[Member],
    (n, senders, size): (usize, usize, usize),
    rx: &mut mpsc::UnboundedReceiver<Note>,
    stall: Duration,
) -> anyhow::Result<RelayRow> {
    let (messages, server_pid) = (a.messages, a.common.server_pid);
    eprintln!("sessions: relay, {n} members, {senders} sender(s), {size} bytes");
    let (session, _, _) = create(members, n, rx, stall).await?;
    // The last member reads; the creator sends, or members 0..senders do.
    let reader = n - 1;
    let per = messages / senders;
    let total = per * senders;
    let pid = server_pid.map(|p| p.to_string());
    let cpu0 = pid.as_deref().and_then(crate::procfs::cpu_time);
    let machine = MachineCpu::start();
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (k, m) in members[..senders].iter().enumerate() {
        let (dev, s) = (m.dev.clone(), session.clone());
        tasks.spawn(async move { send_all(dev, s, u32::try_from(k)?, per, size).await });
    }
    let mut send_call = Samples::default();
    let mut send_secs = 0.0;
    let mut pending = senders;
    let (mut received, mut gaps, mut last_at, mut bytes) = (0usize, 0usize, t0, 0usize);
    let mut done = vec![false; senders];
    let mut finished = 0;
    // Read the channel and reap the senders together until every sender's last message arrived.
    while finished < senders || pending > 0 {
        tokio::select! {
            r = tasks.join_next(), if pending > 0 => {
                let times = r.context("a sender stopped")???;
                send_call.extend(&times);
                pending -= 1;
                if pending == 0 {
                    send_secs = t0.elapsed().as_secs_f64();
                }
            }
            note = next_note(rx, stall) => {
                let note = note.with_context(|| format!("{received} of {total} messages delivered"))?;
                if note.member != reader {
                    continue;
                }
                match note.seen {
                    Seen::Message(s, tag, i, len) if s == session => {
                        received += 1;
                        bytes += len;
                        last_at = note.at;
                        let k = tag as usize;
                        if k < senders && i as usize + 1 == per && !done[k] {
                            done[k] = true;
                            finished += 1;
                        }
                    }
                    Seen::Gap => gaps += 1,
                    _ => {}
                }
            }
        }
    }
    let machine_busy = machine.busy_percent();
    let server_cpu = match (cpu0, pid.as_deref().and_then(crate::procfs::cpu_time)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a).as_secs_f64() * 1000.0 / total as f64),
        _ => None,
    };
    members[0].dev.close_session(&session).await.context("close the session")?;
    let delivered = last_at.saturating_duration_since(t0).as_secs_f64();
    let mb = |b: usize, secs: f64| b as f64 / 1e6 / secs;
    Ok(RelayRow {
        members: n,
        senders,
        message_bytes: size,
        messages: total,
        send_secs,
        send_messages_per_sec: total as f64 / send_secs,
        send_mb_per_sec: mb(total * size, send_secs),
        received,
        gaps,
        delivered_secs: delivered,
        delivered_messages_per_sec: received as f64 / delivered,
        delivered_mb_per_sec: mb(bytes, delivered),
        send_call: send_call.summary(),
        machine_cpu_busy_percent: machine_busy,
        server_cpu_ms_per_message: server_cpu,
    })
}

/// Runs the benchmark.
pub async fn run(a: SessionsArgs) -> anyhow::Result<()> {
    let c = &a.common;
    let devices = a.members.iter().chain(&a.relay_members).copied().max().unwrap_or(2);
    if a.members.iter().chain(&a.relay_members).any(|&n| n < 2) || a.senders == 0 {
        bail!("every session has at least 2 members, and --senders is at least 1");
    }
    if a.sizes.iter().any(|&s| !(8..=65_508).contains(&s)) || a.messages < a.senders {
        bail!("--sizes are 8 to 65508 bytes, and --messages at least --senders");
    }
    let stall = Duration::from_secs(a.stall_secs.max(1));
    let approver = c.client()?;
    let sessions = c.sessions(&approver).await?;
    // The last approver: earlier runs register their devices with the first.
    let session = sessions.last().context("no approver session")?;

    let t_setup = Instant::now();
    let root = std::env::temp_dir().join(format!("latchkey-bench-sessions-{}", uuid::Uuid::new_v4().simple()));
    let mut members = Vec::new();
    for i in 0..devices {
        members
            .push(member(c, &approver, session, &format!("bench member {}", i + 1), root.join(i.to_string())).await?);
    }
    let result = measure(&a, &members, devices, stall, t_setup).await;
    // Unmeasured cleanup, whatever happened.
    for m in &members {
        if let Err(e) = approver.revoke_device(session.as_str(), &m.id).await {
            eprintln!("warning: could not revoke bench device {}: {e}", m.id);
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    result
}

/// Trust, channels, then the measured parts.
async fn measure(
    a: &SessionsArgs,
    members: &[Member],
    devices: usize,
    stall: Duration,
    t_setup: Instant,
) -> anyhow::Result<()> {
    let c = &a.common;
    for (i, x) in members.iter().enumerate() {
        for y in &members[i + 1..] {
            trust(x, y).await?;
            trust(y, x).await?;
        }
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut pumps = tokio::task::JoinSet::new();
    for (i, m) in members.iter().enumerate() {
        pumps.spawn(pump(i, m.dev.clone(), tx.clone()));
    }
    drop(tx);
    // Every channel is open (and so every member online) once each member's channel
    // answers; a throwaway session with all of them proves it.
    let (warm, _, _) = create(members, devices, &mut rx, stall).await.context("first session")?;
    members[0].dev.close_session(&warm).await.context("close")?;
    let setup_secs = t_setup.elapsed().as_secs_f64();
    eprintln!("sessions: {devices} devices signed in, trusting each other, channels open ({setup_secs:.1} s)");

    let watch = c.server_pid.map(ServerWatch::start);
    let mut creation = Vec::new();
    let mut created = 0;
    for &n in &a.members {
        eprintln!("sessions: creating {} {n}-member sessions", a.warmup + a.repeat);
        let (mut create_t, mut joined_t) = (Samples::default(), Samples::default());
        for r in 0..a.warmup + a.repeat {
            let (id, ct, jt) = create(members, n, &mut rx, stall).await?;
            members[0].dev.close_session(&id).await.context("close the session")?;
            if r >= a.warmup {
                create_t.push(ct);
                joined_t.push(jt);
                created += 1;
            }
        }
        creation.push(CreationRow { members: n, create: create_t.summary(), all_joined: joined_t.summary() });
    }
    let server_creation = match watch {
        Some(w) => Some(w.finish().await),
        None => None,
    };

    let watch = c.server_pid.map(ServerWatch::start);
    let mut relay_rows = Vec::new();
    for &n in &a.relay_members {
        for &size in &a.sizes {
            relay_rows.push(relay(a, members, (n, 1, size), &mut rx, stall).await?);
            if n > a.senders {
                relay_rows.push(relay(a, members, (n, a.senders, size), &mut rx, stall).await?);
            }
        }
    }
    let server_relay = match watch {
        Some(w) => Some(w.finish().await),
        None => None,
    };
    pumps.abort_all();

    println!(
        "sessions: creation, {} sessions per member count after {} unmeasured (creator included in members)",
        a.repeat, a.warmup
    );
    let names: Vec<(String, Summary)> = creation
        .iter()
        .flat_map(|r| {
            [
                (format!("{} members: create call", r.members), r.create),
                (format!("{} members: create → all joined", r.members), r.all_joined),
            ]
        })
        .collect();
    let rows: Vec<(&str, Summary)> = names.iter().map(|(n, s)| (n.as_str(), *s)).collect();
    print_table(&rows);
    if let Some(s) = &server_creation {
        print_server(s, Some((created as f64, "session")));
    }
    println!("sessions: relay, one member reading (MB = 10^6 bytes of plaintext)");
    println!(
        "  {:>7} {:>7} {:>7} {:>6} {:>9} {:>8} {:>9} {:>8} {:>8} {:>5} {:>9} {:>9}",
        "members",
        "senders",
        "bytes",
        "msgs",
        "sent/s",
        "sentMB/s",
        "deliv/s",
        "delivMB/s",
        "received",
        "gaps",
        "send p50",
        "send p99"
    );
    for r in &relay_rows {
        println!(
            "  {:>7} {:>7} {:>7} {:>6} {:>9.0} {:>8.2} {:>9.0} {:>8.2} {:>8} {:>5} {:>9.2} {:>9.2}",
            r.members,
            r.senders,
            r.message_bytes,
            r.messages,
            r.send_messages_per_sec,
            r.send_mb_per_sec,
            r.delivered_messages_per_sec,
            r.delivered_mb_per_sec,
            r.received,
            r.gaps,
            r.send_call.p50_ms,
            r.send_call.p99_ms
        );
    }
    let busy: Vec<String> =
        relay_rows.iter().filter_map(|r| r.machine_cpu_busy_percent.map(|b| format!("{b:.0}%"))).collect();
    if !busy.is_empty() {
        println!("  machine CPU busy per run: {}", busy.join(", "));
    }
    let cpu: Vec<String> =
        relay_rows.iter().filter_map(|r| r.server_cpu_ms_per_message.map(|m| format!("{m:.2}"))).collect();
    if !cpu.is_empty() {
        println!("  server CPU per message sent (ms), per run: {}", cpu.join(", "));
    }
    let refused = REFUSED.load(std::sync::atomic::Ordering::Relaxed);
    if refused > 0 {
        println!("  channel events the library refused (messages of sessions already closed): {refused}");
    }
    let relayed: usize = relay_rows.iter().map(|r| r.messages).sum();
    if let Some(s) = &server_relay {
        print_server(s, Some((relayed as f64, "message")));
    }
    let report = SessionsReport {
        mode: "sessions",
        url: c.url.clone(),
        devices,
        setup_secs,
        repeat: a.repeat,
        creation,
        relay: relay_rows,
        server_creation,
        server_relay,
        refused_channel_events: refused,
    };
    if c.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}
