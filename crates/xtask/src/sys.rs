//! Running programs, finding them, and installing Debian packages.

use anyhow::{bail, Context, Result};
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set on SIGINT or SIGTERM: xtask stays alive to stop its PostgreSQL, and its waits end early.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether Ctrl-C (or SIGTERM) has arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Fails if Ctrl-C (or SIGTERM) has arrived, so the next step does not start.
pub fn bail_if_interrupted() -> Result<()> {
    if interrupted() {
        bail!("interrupted");
    }
    Ok(())
}

/// An executable named `name` on `PATH`, else in one of `extra_dirs`.
pub fn find_program(name: &str, extra_dirs: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra_dirs.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// Whether `p` is a file someone may execute.
fn is_executable(p: &Path) -> bool {
    p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Whether a user of that name exists on this machine.
pub fn user_exists(name: &str) -> bool {
    Command::new("id").arg("-u").arg(name).output().map(|o| o.status.success()).unwrap_or(false)
}

/// The command line of `cmd`, for messages.
pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program()).chain(cmd.get_args()).map(OsStr::to_string_lossy).collect::<Vec<_>>().join(" ")
}

/// Runs `cmd` with its output captured; on failure the error names it and shows the end of what it printed.
pub fn run_captured(cmd: &mut Command) -> Result<Output> {
    let out = cmd.output().with_context(|| format!("cannot run `{}`", describe(cmd)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}):\n{}{}",
            describe(cmd),
            out.status,
            tail(&String::from_utf8_lossy(&out.stdout)),
            tail(&String::from_utf8_lossy(&out.stderr))
        );
    }
    Ok(out)
}

/// Runs `cmd` with its output going to the terminal, failing unless it succeeds.
pub fn run_shown(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("cannot run `{}`", describe(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", describe(cmd));
    }
    Ok(())
}

/// The last lines of some output, each ending in a newline, for error messages.
pub fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].iter().map(|l| format!("{l}\n")).collect()
}

/// Installs Debian `packages` with apt-get, through sudo when not root.
pub fn apt_install(packages: &[&str]) -> Result<()> {
    if find_program("apt-get", &[]).is_none() {
        bail!("apt-get is not available on this machine");
    }
    let root = is_root();
    if !root && find_program("sudo", &[]).is_none() {
        bail!("installing packages needs root, and sudo is not installed");
    }
    let apt = |args: &[&str]| {
        let mut cmd = if root {
            Command::new("apt-get")
        } else {
            // sudo resets the environment, so DEBIAN_FRONTEND has to go through `env`.
            let mut c = Command::new("sudo");
            c.args(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]);
            c
        };
        // Another apt run (a colleague's build, unattended-upgrades) may hold the
        // dpkg lock: wait for it rather than fail at once.
        cmd.env("DEBIAN_FRONTEND", "noninteractive").args(["-o", "DPkg::Lock::Timeout=600", "-qq"]).args(args);
        cmd
    };
    eprintln!("xtask: installing {} with apt-get", packages.join(" "));
    run_shown(&mut apt(&["update"]))?;
    let mut install = apt(&["install", "-y"]);
    install.args(packages);
    run_shown(&mut install)
}
