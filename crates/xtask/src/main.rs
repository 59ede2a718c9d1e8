//! `cargo xtask test`: the one command that runs Latchkey's whole test suite on a fresh machine.
//!
//! It finds chromium and chromedriver for the browser tests and HAProxy for the
//! load-balancer test (installing them with apt if missing), Node.js with the test
//! relying party's packages (`npm ci`; a missing node or npm fails it), uses the PostgreSQL named by
//! `LATCHKEY_TEST_POSTGRES_URL` or else starts a throwaway cluster of its own,
//! then runs `cargo test --workspace` with both switched on.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod browser;
mod haproxy;
mod node;
mod pg;
mod sys;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::signal::unix::{signal, SignalKind};

/// Latchkey's developer tasks.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", about = "Latchkey's developer tasks")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

/// One task.
#[derive(Subcommand)]
enum Task {
    /// Run the whole test suite: finds or installs chromium, chromedriver and
    /// PostgreSQL, installs the test relying party's npm packages, then runs
    /// `cargo test --workspace [ARGS]`.
    Test {
        /// Passed on to `cargo test` (put test-binary flags after another `--`);
        /// with `-p PACKAGE` only that package's tests run.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cargo_test_args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the chosen task; its exit code is the tests'.
fn run(cli: Cli) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    listen_for_interrupts(&rt)?;
    match cli.command {
        Task::Test { cargo_test_args } => test(&rt, &cargo_test_args),
    }
}

/// Turns SIGINT and SIGTERM into a flag, so that xtask outlives them long enough to stop its PostgreSQL.
fn listen_for_interrupts(rt: &Runtime) -> Result<()> {
    let _context = rt.enter();
    for kind in [SignalKind::interrupt(), SignalKind::terminate()] {
        let mut signals = signal(kind).context("cannot listen for signals")?;
        rt.spawn(async move {
            while signals.recv().await.is_some() {
                sys::INTERRUPTED.store(true, Ordering::SeqCst);
            }
        });
    }
    Ok(())
}

/// Provides the browser and PostgreSQL, runs `cargo test --workspace`, and cleans up after it.
fn test(rt: &Runtime, cargo_test_args: &[String]) -> Result<ExitCode> {
    eprintln!("xtask: --- chromium and chromedriver");
    let browser = browser::ensure()?;
    eprintln!("xtask: chromium {}, chromedriver {}", browser.chromium.display(), browser.chromedriver.display());
    sys::bail_if_interrupted()?;

    eprintln!("xtask: --- haproxy");
    let haproxy = haproxy::ensure()?;
    eprintln!("xtask: haproxy {}", haproxy.display());
    sys::bail_if_interrupted()?;

    eprintln!("xtask: --- node and the test relying party");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let node = node::ensure(&workspace)?;
    sys::bail_if_interrupted()?;

    eprintln!("xtask: --- PostgreSQL");
    // Held until this function returns: a cluster of our own is stopped and deleted then, whatever happened.
    let postgres = pg::provide(rt)?;
    sys::bail_if_interrupted()?;

    // `cargo run` tells us which cargo (and so which toolchain) to use.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace).arg("test");
    // `--workspace` would override a `-p` the caller passed to run one crate's tests.
    if !cargo_test_args.iter().take_while(|a| *a != "--").any(|a| names_package(a)) {
        cmd.arg("--workspace");
    }
    // Passed on, the variables `cargo run` set for xtask itself would differ from a plain
    // shell's, and cargo reruns build scripts that watch them (ring watches CARGO_PKG_NAME):
    // every switch between `cargo xtask test` and plain cargo would rebuild half the workspace.
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo_run) {
            cmd.env_remove(name);
        }
    }
    cmd.args(cargo_test_args)
        .env(pg::URL_VAR, postgres.url())
        .env("LATCHKEY_CHROMIUM", &browser.chromium)
        .env("LATCHKEY_CHROMEDRIVER", &browser.chromedriver)
        .env("LATCHKEY_HAPROXY", &haproxy)
        .env("LATCHKEY_NODE", &node);
    // The PostgreSQL TLS test starts a cluster of its own: where PostgreSQL's binaries
    // are here it must run (and fail loudly if it cannot), not skip.
    if pg::find_bin().is_some() {
        cmd.env("LATCHKEY_TEST_POSTGRES_TLS", "1");
    } else {
        eprintln!("xtask: initdb and pg_ctl not found: the PostgreSQL TLS test will say it skips");
    }
    eprintln!("xtask: --- {}", sys::describe(&cmd));
    let mut child = cmd.spawn().with_context(|| format!("cannot run `{}`", sys::describe(&cmd)))?;
    // Poll rather than block, so that a SIGTERM sent to xtask alone still ends the tests.
    let mut killed = false;
    let status = loop {
        if let Some(status) = child.try_wait().context("cannot wait for cargo test")? {
            break status;
        }
        if sys::interrupted() && !killed {
            let _ = child.kill();
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(postgres);
    if sys::interrupted() {
        eprintln!("xtask: interrupted");
        return Ok(ExitCode::from(130));
    }
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1).max(1)),
        None => ExitCode::FAILURE,
    })
}

/// Whether a `cargo test` argument picks packages (`-p`, `--package`), so the whole workspace is not wanted.
fn names_package(arg: &str) -> bool {
    arg == "--package" || arg.starts_with("--package=") || arg.starts_with("-p")
}

/// Whether `cargo run` sets this variable to describe the package it runs (here xtask).
fn set_by_cargo_run(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_MANIFEST_")
        || matches!(name, "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE")
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::{names_package, set_by_cargo_run, Cli, Task};
    use clap::Parser;

    /// The arguments `cargo xtask test ARGS…` passes on to `cargo test`.
    fn passed_on(args: &[&str]) -> Vec<String> {
        let argv = ["xtask", "test"].iter().chain(args);
        match Cli::try_parse_from(argv) {
            Ok(Cli { command: Task::Test { cargo_test_args } }) => cargo_test_args,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn arguments_after_the_separator_go_to_cargo_test_verbatim() {
        assert_eq!(passed_on(&["--", "-p", "xtask", "--", "--nocapture"]), ["-p", "xtask", "--", "--nocapture"]);
        assert_eq!(passed_on(&["--release"]), ["--release"]);
        assert!(passed_on(&[]).is_empty());
    }

    #[test]
    fn only_package_flags_narrow_the_run() {
        assert!(names_package("-p") && names_package("-platchkey") && names_package("--package=latchkey"));
        assert!(!names_package("--release") && !names_package("--nocapture"));
    }

    #[test]
    fn only_the_running_package_s_variables_are_dropped() {
        assert!(set_by_cargo_run("CARGO_PKG_NAME") && set_by_cargo_run("CARGO_MANIFEST_DIR"));
        assert!(!set_by_cargo_run("CARGO_TARGET_DIR") && !set_by_cargo_run("CARGO_HOME") && !set_by_cargo_run("CARGO"));
    }
}
