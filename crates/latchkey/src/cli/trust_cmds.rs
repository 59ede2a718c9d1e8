//! `latchkey trust …`, `latchkey device …` and `latchkey session …`: trusted devices and the
//! end-to-end encrypted sessions between them (issue 9).

use super::account_cmds::{call, confirm, resolve};
use super::login::explain;
use super::{output, ClientArgs};
use anyhow::{anyhow, bail, Context};
use clap::Subcommand;
use latchkey_client::account::{session_from, Account};
use latchkey_client::trusted::{TrustedDevice, TrustedError, TrustedResult, Update};
use latchkey_client::Auth;
use latchkey_domain::trust::PublicKey;
use latchkey_proto::trust::{SessionInfo, SessionRequest, TargetResult};
use std::future::Future;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// How long `session listen` waits before it opens a dropped channel again.
const RECONNECT_AFTER: Duration = Duration::from_secs(2);

/// `latchkey trust …`.
#[derive(Subcommand, Debug)]
pub enum TrustCommand {
    /// Trust another of your devices, after comparing its key fingerprint with the one it shows.
    Add {
        /// Device ID or slug.
        device: String,
        /// Do not ask for confirmation (only when you compared the fingerprint another way).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// List the trust between your devices.
    List,
    /// Stop trusting a device.
    Remove {
        /// Device ID or slug.
        device: String,
    },
}

/// `latchkey device …`: this machine's own key.
#[derive(Subcommand, Debug)]
pub enum DeviceCommand {
    /// Print this machine's key fingerprint (compare it when another device trusts this one).
    Fingerprint,
    /// Replace this machine's key; trust carries over unless --unchained.
    RotateKey {
        /// Do not sign the new key with the old one: every device that trusted this one must trust it again.
        #[arg(long)]
        unchained: bool,
    },
}

/// `latchkey session …`: end-to-end encrypted sessions between trusted devices.
#[derive(Subcommand, Debug)]
pub enum SessionCommand {
    /// Make a session with other trusted devices.
    Create {
        /// A device to invite (ID or slug); repeat for more.
        #[arg(long = "with", value_name = "DEVICE", required = true)]
        with: Vec<String>,
        /// Make the session with the devices that can join, even if some cannot.
        #[arg(long)]
        partial: bool,
        /// Refuse devices that are not online now.
        #[arg(long)]
        online_only: bool,
        /// How long the session lives, in seconds (default one hour, at most a day).
        #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(i64).range(1..))]
        ttl: Option<i64>,
    },
    /// List the sessions this device is a member of.
    List,
    /// Send a message to the other members.
    Send {
        /// Session ID.
        session: String,
        /// The message (`-`: read it from stdin).
        message: String,
    },
    /// Stay online: join invitations and print each message as a JSON line {session, sender, seq, text}.
    Listen {
        /// Stop after this many messages.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
        /// Stop after this many seconds (with --count: exit 1 if fewer arrived).
        #[arg(long, value_name = "SECS")]
        timeout: Option<u64>,
        /// Read the channel after this position (default: where the last listen stopped).
        #[arg(long)]
        after: Option<i64>,
    },
    /// Leave a session.
    Leave {
        /// Session ID.
        session: String,
    },
    /// Close a session you made, for every member.
    Close {
        /// Session ID.
        session: String,
    },
}

/// Errors that say what to do.
fn explain_trusted(e: TrustedError) -> anyhow::Error {
    let hint = match e.code() {
        Some("rekey_needed") | Some("wrong_epoch") => Some(
            "a member left and the session is getting a new key; keep `latchkey session listen` running here to receive it, then send again",
        ),
        Some("out_of_order") => Some("this machine's message counter for the session is out of step with the server's"),
        Some("message_too_large") => Some("the message is too large for the relay"),
        _ => None,
    };
    match (e, hint) {
        (TrustedError::Client(c), Some(h)) => anyhow!("{}: {h}", explain(c)),
        (TrustedError::Client(c), None) => explain(c),
        (other, _) => anyhow!("{other}"),
    }
}

/// This machine as a trusted-session device: its client, key, ID, fresh token and profile directory.
async fn device(account: &mut Account) -> anyhow::Result<TrustedDevice> {
    let token = account.access_token().await?;
    let id = match account.session().device.as_ref().map(|d| d.id.clone()) {
        Some(id) => id,
        None => {
            let me = call(account, |c, t| async move { c.me(Auth::Access(&t)).await }).await?;
            me.device
                .map(|d| d.id)
                .ok_or_else(|| anyhow!("this sign-in is not a device; log in with `latchkey login`"))?
        }
    };
    let key = Arc::new(account.profile().device_key()?);
    let dir = account.profile().dir().to_path_buf();
    Ok(TrustedDevice::new(account.client().clone(), key, id, token, dir))
}

/// Runs `f` with the device; on a refused token, refreshes once and runs it again.
async fn with_device<T, F, Fut>(account: &mut Account, dev: &mut TrustedDevice, f: F) -> anyhow::Result<T>
where
    F: Fn(TrustedDevice) -> Fut,
    Fut: Future<Output = TrustedResult<T>>,
{
    match f(dev.clone()).await {
        Err(e) if e.status() == Some(401) => {
            account.refresh().await?;
            dev.set_access_token(account.session().access_token.clone());
            f(dev.clone()).await.map_err(explain_trusted)
        }
        other => other.map_err(explain_trusted),
    }
}

/// Publishes this device's session key (idempotent), so other devices can invite it.
async fn publish(account: &mut Account, dev: &mut TrustedDevice) -> anyhow::Result<()> {
    with_device(account, dev, |d| async move { d.publish_session_key().await })
        .await
        .context("could not publish this device's session key")
}

/// Runs `latchkey trust …`.
pub async fn trust(common: &ClientArgs, cmd: TrustCommand) -> anyhow::Result<ExitCode> {
    let mut account = common.account()?;
    let mut dev = device(&mut account).await?;
    match cmd {
        TrustCommand::Add { device, yes } => {
            let target = resolve(&mut account, &device).await?;
            if target.current || target.id == dev.device_id() {
                bail!("that is this machine; run `latchkey trust add` on the other device to trust this one");
            }
            let id = target.id.clone();
            let keys = with_device(&mut account, &mut dev, |d| {
                let id = id.clone();
                async move { d.device_keys(&id).await }
            })
            .await?;
            if keys.device_id != target.id {
                bail!("the server answered with the keys of another device");
            }
            if keys.status != "active" {
                bail!("\"{}\" is {}; only active devices can be trusted", keys.name, keys.status);
            }
            // The fingerprint shown is computed here from the key that will be signed, not taken from the server.
            let key = PublicKey::from_b64(&keys.public_key)?;
            eprintln!("Device \"{}\" ({}, {})", keys.name, keys.slug, keys.device_id);
            eprintln!("  key fingerprint: {}", key.fingerprint());
            eprintln!("Compare it with `latchkey device fingerprint` on that machine. Trust it only if they match.");
            if !confirm("Do the fingerprints match, and do you trust this device?", yes)? {
                bail!("not trusted");
            }
            publish(&mut account, &mut dev).await?;
            let info = with_device(&mut account, &mut dev, |d| {
                let keys = keys.clone();
                async move { d.trust(&keys).await }
            })
            .await?;
            if common.json {
                output::json(&info)?;
            } else {
                println!("This machine now trusts \"{}\" ({}).", info.trustee_name, info.trustee_fingerprint);
                if !info.holds {
                    println!(
                        "Sessions with it work once it trusts this machine too: run `latchkey trust add {}` there.",
                        dev.device_id()
                    );
                }
            }
        }
        TrustCommand::List => {
            let list = with_device(&mut account, &mut dev, |d| async move { d.trusts().await }).await?;
            let local = dev.store().trusted().map_err(explain_trusted)?;
            if common.json {
                let out = serde_json::json!({"trusts": list.trusts, "this_machine_trusts": local});
                output::json(&out)?;
            } else if list.trusts.is_empty() {
                println!("No trust between your devices yet (`latchkey trust add DEVICE` adds one).");
            } else {
                println!("{:<24} {:<24} {:<26} {:<8} SINCE", "TRUSTER", "TRUSTEE", "TRUSTEE KEY", "HOLDS");
                for t in &list.trusts {
                    println!(
                        "{:<24} {:<24} {:<26} {:<8} {}",
                        t.truster_name,
                        t.trustee_name,
                        t.trustee_fingerprint,
                        if t.holds { "yes" } else { "no" },
                        output::when(t.created_at_ms)
                    );
                }
                println!("(HOLDS no: a device was revoked, or its key changed without a signed rotation)");
            }
        }
        TrustCommand::Remove { device } => {
            let id = match resolve(&mut account, &device).await {
                Ok(d) => d.id,
                // Gone from the list (e.g. deleted): it can still be forgotten by ID.
                Err(_) => device.clone(),
            };
            with_device(&mut account, &mut dev, |d| {
                let id = id.clone();
                async move { d.untrust(&id).await }
            })
            .await?;
            if !common.json {
                println!("This machine no longer trusts {device}.");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `latchkey device …`.
pub async fn device_cmd(common: &ClientArgs, cmd: DeviceCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DeviceCommand::Fingerprint => {
            let profile = common.profile()?;
            if !profile.has_device_key() {
                bail!("this profile has no device key yet; run `latchkey login` first");
            }
            let fp = profile.device_key()?.public_key().fingerprint().to_string();
            if common.json {
                output::json(&serde_json::json!({"fingerprint": fp}))?;
            } else {
                println!("{fp}");
            }
        }
        DeviceCommand::RotateKey { unchained } => {
            let mut account = common.account()?;
            let mut dev = device(&mut account).await?;
            let rotated =
                with_device(&mut account, &mut dev, |d| async move { d.rotate_key(!unchained).await }).await?;
            // Only now that the server took it: store the key and the tokens bound to it.
            let old = account.session().clone();
            let mut next =
                session_from(&old.server, &old.client_id, &rotated.tokens, &old.username, old.login_started_at_ms);
            next.device = old.device.clone();
            account.profile().save_rotated(&rotated.key, &next)?;
            dev.adopt(&rotated);
            let published = dev.publish_session_key().await;
            let fp = rotated.key.public_key().fingerprint().to_string();
            if common.json {
                output::json(&serde_json::json!({"fingerprint": fp, "chained": !unchained}))?;
            } else {
                println!("This machine has a new key: {fp}");
                if unchained {
                    println!("Devices that trusted this machine must compare this fingerprint and trust it again.");
                } else {
                    println!("The old key signed the new one, so trust in this machine carries over.");
                }
            }
            if let Err(e) = published {
                eprintln!("warning: could not publish the new session key ({e}); `latchkey session listen` does it");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line about a target's answer, for people.
fn target_line(t: &TargetResult) -> String {
    let why = match t.outcome.as_str() {
        "invited" => "invited (online)".to_string(),
        "invited_offline" => "invited (offline: it joins when it connects)".to_string(),
        "unknown_device" => "no such device".to_string(),
        "ambiguous_name" => "more than one device has this name; use its ID".to_string(),
        "creator_itself" => "this machine (a member anyway)".to_string(),
        "revoked" => "revoked".to_string(),
        "incompatible" => "has not published a session key (run `latchkey session listen` on it once)".to_string(),
        "not_trusted" => match t.missing.as_deref() {
            Some("creator") => "not trusted: this machine does not trust it (`latchkey trust add`)".to_string(),
            Some("target") => "not trusted: it does not trust this machine (`latchkey trust add` there)".to_string(),
            _ => "not trusted: neither trusts the other".to_string(),
        },
        "ambiguous" => "online from two places at once; refused".to_string(),
        "offline" => "offline".to_string(),
        "over_limit" => "too many members".to_string(),
        other => other.to_string(),
    };
    let id = t.device_id.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
    format!("{}{id}: {why}", t.target)
}

/// A table of sessions.
fn session_table(list: &[SessionInfo], dev: &TrustedDevice) {
    if list.is_empty() {
        println!("No trusted sessions (`latchkey session create --with DEVICE` makes one).");
        return;
    }
    let held = dev.store().sessions().unwrap_or_default();
    println!("{:<38} {:<8} {:<6} {:<4} {:<21} MEMBERS", "ID", "STATUS", "EPOCH", "KEY", "ENDS");
    for s in list {
        let members: Vec<String> = s
            .members
            .iter()
            .map(|m| {
                let me = if m.device_id == dev.device_id() { "*" } else { "" };
                format!("{me}{}:{}", m.device_id, m.status)
            })
            .collect();
        let key = match held.get(&s.id).map(|h| h.keys.contains_key(&s.epoch)) {
            Some(true) => "yes",
            _ => "no",
        };
        let status = if s.rekey_needed && s.status == "open" { "rekeying" } else { s.status.as_str() };
        println!(
            "{:<38} {:<8} {:<6} {:<4} {:<21} {}",
            s.id,
            status,
            s.epoch,
            key,
            output::when(s.expires_at_ms),
            members.join(" ")
        );
    }
    println!("(KEY: whether this machine holds the current session key; * this machine)");
}

/// Runs `latchkey session …`.
pub async fn session(common: &ClientArgs, cmd: SessionCommand) -> anyhow::Result<ExitCode> {
    let mut account = common.account()?;
    let mut dev = device(&mut account).await?;
    match cmd {
        SessionCommand::Create { with, partial, online_only, ttl } => {
            publish(&mut account, &mut dev).await?;
            let req = SessionRequest { targets: with, partial, online_only, ttl_secs: ttl };
            let created = with_device(&mut account, &mut dev, |d| {
                let req = req.clone();
                async move { d.create_session(&req).await }
            })
            .await?;
            if common.json {
                output::json(&created)?;
            } else {
                for t in &created.targets {
                    println!("{}", target_line(t));
                }
                match &created.session {
                    Some(s) => println!("{}", s.id),
                    None => eprintln!("No session was made (--partial makes one with the devices that can join)."),
                }
            }
            if created.session.is_none() {
                return Ok(ExitCode::FAILURE);
            }
        }
        SessionCommand::List => {
            let list = with_device(&mut account, &mut dev, |d| async move { d.sessions().await }).await?;
            if common.json {
                output::json(&list)?;
            } else {
                session_table(&list, &dev);
            }
        }
        SessionCommand::Send { session, message } => {
            let message = if message == "-" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).context("cannot read stdin")?;
                text
            } else {
                message
            };
            let sent = with_device(&mut account, &mut dev, |d| {
                let (session, message) = (session.clone(), message.clone());
                async move { d.send(&session, message.as_bytes()).await }
            })
            .await?;
            if common.json {
                output::json(&sent)?;
            } else {
                println!("Sent ({}).", sent.id);
            }
        }
        SessionCommand::Listen { count, timeout, after } => {
            publish(&mut account, &mut dev).await?;
            let start = match after {
                Some(a) => a,
                None => dev.store().cursor().map_err(explain_trusted)?,
            };
            let run = listen(&mut account, &mut dev, start, count);
            let got = match timeout {
                Some(secs) => match tokio::time::timeout(Duration::from_secs(secs), run).await {
                    Ok(r) => r?,
                    Err(_) => {
                        if count.is_some() {
                            bail!("timed out before {} messages arrived", count.unwrap_or_default());
                        }
                        return Ok(ExitCode::SUCCESS);
                    }
                },
                None => run.await?,
            };
            if !common.json {
                eprintln!("{got} messages");
            }
        }
        SessionCommand::Leave { session } => {
            with_device(&mut account, &mut dev, |d| {
                let session = session.clone();
                async move { d.leave_session(&session).await }
            })
            .await?;
            if !common.json {
                println!("Left {session}.");
            }
        }
        SessionCommand::Close { session } => {
            with_device(&mut account, &mut dev, |d| {
                let session = session.clone();
                async move { d.close_session(&session).await }
            })
            .await?;
            if !common.json {
                println!("Closed {session} for every member.");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Holds the channel, handling events and printing messages, until `count` messages
/// arrived (or forever); reconnects after a drop, where it stopped. Returns the messages printed.
async fn listen(
    account: &mut Account,
    dev: &mut TrustedDevice,
    mut after: i64,
    count: Option<u64>,
) -> anyhow::Result<u64> {
    let mut got = 0u64;
    let mut refresh = false;
    loop {
        if refresh {
            account.refresh().await?;
            refresh = false;
        }
        dev.set_access_token(account.access_token().await?);
        let mut channel = match dev.channel(after).await {
            Ok(c) => c,
            Err(e) if e.status() == Some(401) => {
                refresh = true;
                continue;
            }
            // Refused (revoked, not found, …): trying again will not help.
            Err(e) if e.status().is_some() => return Err(explain_trusted(e)),
            Err(e) => {
                eprintln!("warning: cannot open the channel ({}); trying again", explain_trusted(e));
                tokio::time::sleep(RECONNECT_AFTER).await;
                continue;
            }
        };
        while let Some(update) = dev.next_update(&mut channel).await {
            match update {
                Ok(Update::Message(m)) => {
                    let line = serde_json::json!({
                        "session": m.session_id,
                        "sender": m.sender,
                        "seq": m.seq,
                        "text": String::from_utf8_lossy(&m.plaintext),
                    });
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "{line}")?;
                    out.flush()?;
                    got += 1;
                }
                Ok(Update::Joined { session_id, epoch, sender }) => {
                    eprintln!("joined {session_id} (key generation {epoch}, invited by {sender})");
                }
                Ok(Update::Session { session_id, event, device, issued, .. }) => {
                    let who = device.map(|d| format!(" {d}")).unwrap_or_default();
                    let what = if issued { " (this machine sent the new invitations)" } else { "" };
                    eprintln!("{session_id}: {event}{who}{what}");
                }
                Ok(Update::Ready { .. }) => eprintln!("online; waiting for invitations and messages"),
                Ok(Update::Gap { oldest }) => eprintln!("warning: messages before {oldest} were dropped by the server"),
                Ok(Update::Own { .. }) => {}
                Err(e) if e.status() == Some(401) => {
                    // The token expired while listening: refresh and open the channel again.
                    refresh = true;
                    break;
                }
                Err(e) => eprintln!("warning: {}", explain_trusted(e)),
            }
            after = channel.last_id();
            if let Err(e) = dev.store().set_cursor(after) {
                eprintln!("warning: {e}");
            }
            if count.is_some_and(|n| got >= n) {
                return Ok(got);
            }
        }
        if !refresh {
            tokio::time::sleep(RECONNECT_AFTER).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_reads_as_a_sentence() {
        let t = |outcome: &str, missing: Option<&str>| TargetResult {
            target: "laptop".into(),
            device_id: Some("d1".into()),
            outcome: outcome.into(),
            missing: missing.map(str::to_string),
        };
        assert_eq!(target_line(&t("invited", None)), "laptop (d1): invited (online)");
        assert!(target_line(&t("not_trusted", Some("target"))).contains("`latchkey trust add` there"));
        assert!(target_line(&t("not_trusted", Some("creator"))).contains("this machine does not trust it"));
        let unknown = TargetResult { device_id: None, ..t("unknown_device", None) };
        assert_eq!(target_line(&unknown), "laptop: no such device");
    }
}
