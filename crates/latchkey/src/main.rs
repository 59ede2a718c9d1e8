//! `latchkey`: one binary for the server, its administration, and the command-line client.

mod admin;
mod cli;
#[cfg(feature = "otel")]
mod otel;
mod secret_key;
mod serve;
mod settings;
mod storage;

use clap::{CommandFactory, Parser, Subcommand};
use cli::ClientArgs;
use settings::DataArgs;

/// `latchkey --version`: the crate version and the git revision it was built from (see build.rs).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("LATCHKEY_GIT_REV"), ")");

/// Latchkey: sign people in on their devices, and keep track of those devices.
#[derive(Parser)]
#[command(name = "latchkey", version = VERSION, about)]
struct Cli {
    /// Log lines on stderr as text for people (`text`) or one JSON object per line (`json`).
    #[arg(long, global = true, env = "LATCHKEY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, with the request's span (and its request_id) as fields.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Print a shell completion script: `latchkey completions bash > ~/.local/share/bash-completion/completions/latchkey`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `latchkey man > ~/.local/share/man/man1/latchkey.1`.
    Man,
    /// Run the server.
    Serve(Box<serve::ServeCommand>),
    /// Administer users, apps, keys, enrollment keys and the audit log (works whether or not the server runs).
    Admin {
        #[command(flatten)]
        storage: DataArgs,
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// Sign this machine in: approve it in a browser, or with --enroll-key.
    Login {
        #[command(flatten)]
        common: ClientArgs,
        #[command(flatten)]
        args: cli::login::LoginArgs,
    },
    /// Revoke this machine's sign-in on the server and forget it here.
    Logout {
        #[command(flatten)]
        common: ClientArgs,
        #[command(flatten)]
        args: cli::login::LogoutArgs,
    },
    /// Who is logged in, on which server, as which device.
    Whoami {
        #[command(flatten)]
        common: ClientArgs,
    },
    /// Change your password (asked on the terminal, or two lines on stdin: current, new); ends your other sessions.
    Passwd {
        #[command(flatten)]
        common: ClientArgs,
    },
    /// List, rename, move and revoke your devices.
    Devices {
        #[command(flatten)]
        common: ClientArgs,
        #[command(subcommand)]
        command: cli::account_cmds::DevicesCommand,
    },
    /// List and end your sign-ins that are not devices: browsers signed in to Latchkey,
    /// and apps signed in on the web (QR sign-ins).
    Sessions {
        #[command(flatten)]
        common: ClientArgs,
        #[command(subcommand)]
        command: cli::account_cmds::SessionsCommand,
    },
    /// Capture events on this machine and sync them with your other devices: each event is stored
    /// once, however many devices saw it.
    Events {
        #[command(flatten)]
        common: ClientArgs,
        #[command(subcommand)]
        command: cli::events_cmds::EventsCommand,
    },
    /// Check from this machine that the server's signed audit log only grew since you last looked.
    Audit {
        #[command(flatten)]
        common: ClientArgs,
        #[command(subcommand)]
        command: cli::audit_cmds::AuditCommand,
    },
    /// Trust your other devices (after comparing key fingerprints), so they can make sessions together.
    Trust {
        #[command(flatten)]
        common: ClientArgs,
        #[command(subcommand)]
        command: cli::trust_cmds::TrustCommand,
    },
    /// This machine's own key: show its fingerprint, or replace it.
    Device {
        #[command(flatten)]
        common: ClientArgs,
        #[command(subcommand)]
        command: cli::trust_cmds::DeviceCommand,
    },
    /// End-to-end encrypted sessions between your trusted devices: create, listen, send, leave, close.
    Session {
        #[command(flatten)]
        common: ClientArgs,
        #[command(subcommand)]
        command: cli::trust_cmds::SessionCommand,
    },
    /// Approve another device's login (its code) from this already trusted machine.
    Approve {
        #[command(flatten)]
        common: ClientArgs,
        /// The code the other device shows.
        user_code: String,
        /// Approve without asking.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Deny instead.
        #[arg(long, conflicts_with = "yes")]
        deny: bool,
    },
    /// Make a one-time enrollment key for one of your new machines that cannot open a browser.
    EnrollKey {
        #[command(flatten)]
        common: ClientArgs,
        /// How long it works (e.g. 15m, 1h; at most 1h).
        #[arg(long, default_value = "15m")]
        expires: humantime::Duration,
    },
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    // One filter for every layer: what is logged is what is exported.
    let filter = EnvFilter::try_from_env("LATCHKEY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().boxed(),
    };
    let registry = tracing_subscriber::registry().with(filter).with(fmt);
    #[cfg(feature = "otel")]
    let registry = registry.with(otel::layer());
    registry.init();
}

/// Argon2 allocates 19 MiB per password check. Once such a block is freed, glibc
/// raises its mmap threshold and serves later ones from per-thread arenas it never
/// returns: a server that handled a burst of sign-ins sat at ~1 GiB (measured, see
/// docs/benchmarks.md). Pinning the threshold keeps big blocks in mmap, returned on free.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn pin_malloc_mmap_threshold() {
    // SAFETY: mallopt only tunes the allocator and is thread-safe in glibc; it takes no pointers.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn pin_malloc_mmap_threshold() {}

/// Writes generated text to stdout; a closed pipe is an ordinary failure, not a panic.
fn print_bytes(bytes: &[u8]) -> anyhow::Result<std::process::ExitCode> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes).and_then(|()| out.flush())?;
    Ok(std::process::ExitCode::SUCCESS)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    pin_malloc_mmap_threshold();
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Completions { shell } => {
            // Into memory first: the generator panics on a failed write (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "latchkey", &mut script);
            print_bytes(&script)
        }
        Command::Man => {
            let mut page = Vec::new();
            match clap_mangen::Man::new(Cli::command()).render(&mut page) {
                Ok(()) => print_bytes(&page),
                Err(e) => Err(e.into()),
            }
        }
        Command::Serve(args) => serve::run(*args).await,
        Command::Admin { storage, command } => admin::run(storage, command).await,
        Command::Login { common, args } => cli::login::login(&common, args).await,
        Command::Logout { common, args } => cli::login::logout(&common, args).await,
        Command::Whoami { common } => cli::account_cmds::whoami(&common).await,
        Command::Passwd { common } => cli::account_cmds::passwd(&common).await,
        Command::Devices { common, command } => cli::account_cmds::devices(&common, command).await,
        Command::Sessions { common, command } => cli::account_cmds::sessions(&common, command).await,
        Command::Events { common, command } => cli::events_cmds::events(&common, command).await,
        Command::Audit { common, command } => cli::audit_cmds::audit(&common, command).await,
        Command::Trust { common, command } => cli::trust_cmds::trust(&common, command).await,
        Command::Device { common, command } => cli::trust_cmds::device_cmd(&common, command).await,
        Command::Session { common, command } => cli::trust_cmds::session(&common, command).await,
        Command::Approve { common, user_code, yes, deny } => {
            cli::account_cmds::approve(&common, &user_code, yes, deny).await
        }
        Command::EnrollKey { common, expires } => cli::account_cmds::create_enrollment_key(&common, expires).await,
    };
    #[cfg(feature = "otel")]
    otel::shutdown();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;
    use std::collections::BTreeSet;

    /// Completions and the man page come from the same clap definitions, so every command is in them.
    #[test]
    fn completions_and_man_page_name_every_command() {
        let names: Vec<String> = Cli::command().get_subcommands().map(|c| c.get_name().to_string()).collect();
        for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh, clap_complete::Shell::Fish] {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "latchkey", &mut script);
            let script = String::from_utf8(script).expect("utf-8");
            for name in &names {
                assert!(script.contains(name.as_str()), "{shell} completions lack {name}");
            }
        }
        let mut page = Vec::new();
        clap_mangen::Man::new(Cli::command()).render(&mut page).expect("man page");
        let page = String::from_utf8(page).expect("utf-8");
        assert!(page.starts_with(".ie") && page.contains(".TH latchkey 1"), "{page}");
        for name in &names {
            // roff writes a hyphen as `\-`.
            assert!(page.contains(&name.replace('-', "\\-")), "the man page lacks {name}");
        }
    }

    /// `(flag, environment variable)` of every `latchkey serve` setting, from clap itself.
    fn serve_settings() -> BTreeSet<(String, String)> {
        let cli = Cli::command();
        let serve = cli.find_subcommand("serve").expect("serve subcommand");
        serve
            .get_arguments()
            .filter_map(|a| {
                let long = a.get_long()?;
                let env = a.get_env()?.to_str()?;
                Some((format!("--{long}"), env.to_string()))
            })
            .collect()
    }

    /// `(flag, environment variable)` of every row of README's "Running it" table.
    fn readme_settings() -> BTreeSet<(String, String)> {
        let readme = include_str!("../../../README.md");
        let section = readme.split("\n## Running it\n").nth(1).expect("README has a Running it section");
        let section = section.split("\n## ").next().unwrap_or(section);
        section
            .lines()
            .skip_while(|l| !l.starts_with("| flag | environment |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|row| {
                let cells: Vec<&str> = row.split('|').map(|c| c.trim().trim_matches('`')).collect();
                (cells[1].to_string(), cells[2].to_string())
            })
            .collect()
    }

    #[test]
    fn readme_table_lists_every_serve_setting_and_no_other() {
        let flags = serve_settings();
        let table = readme_settings();
        let missing: Vec<_> = flags.difference(&table).collect();
        let unknown: Vec<_> = table.difference(&flags).collect();
        assert!(
            missing.is_empty() && unknown.is_empty(),
            "README.md's \"Running it\" table is out of date.\n  settings missing from it: {missing:?}\n  rows naming no setting: {unknown:?}"
        );
        assert!(flags.len() > 10, "found the settings: {flags:?}");
    }
}
