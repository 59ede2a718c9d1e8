//! Node.js and the packages of the test relying party (`crates/latchkey/tests/integration/rp`),
//! which the browser tests run to sign in through Latchkey with openid-client.

use crate::sys;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the relying party lives, from the workspace root.
const RP_DIR: &str = "crates/latchkey/tests/integration/rp";

/// The oldest Node.js the relying party runs on: openid-client 6 needs WebCrypto's Ed25519 for our ID tokens.
const MIN_MAJOR: u32 = 20;

const INSTALL_HINT: &str = "the relying-party browser tests need Node.js 20 or later with npm: \
     install Debian's `nodejs` and `npm` packages, or set LATCHKEY_NODE to a node executable \
     (with npm on PATH)";

/// The node executable, once `npm ci` has installed the relying party's locked packages.
///
/// Not installed with apt when missing: Debian's nodejs may be older than 20, and a
/// wrong Node would fail later and less clearly. Missing, it fails here, loudly.
pub fn ensure(workspace: &Path) -> Result<PathBuf> {
    let node = find_node()?.with_context(|| format!("node is not on PATH or in /usr/bin; {INSTALL_HINT}"))?;
    let version = sys::run_captured(Command::new(&node).arg("--version"))?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let major = version.trim_start_matches('v').split('.').next().and_then(|m| m.parse::<u32>().ok());
    if major.is_none_or(|m| m < MIN_MAJOR) {
        bail!("{} is Node.js {version}; {INSTALL_HINT}", node.display());
    }
    let npm = sys::find_program("npm", &["/usr/bin"]).with_context(|| format!("npm is not on PATH; {INSTALL_HINT}"))?;
    eprintln!("xtask: node {} ({version}); npm ci in {RP_DIR}", node.display());
    // `ci`: exactly the lockfile's versions, or an error if package.json and the lockfile
    // disagree. No install scripts: the relying party's packages need none, and none
    // should run on a developer's machine just because the tests were run.
    let mut ci = Command::new(npm);
    ci.current_dir(workspace.join(RP_DIR)).args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"]);
    sys::run_captured(&mut ci).context("could not install the test relying party's packages")?;
    Ok(node)
}

/// `LATCHKEY_NODE` if set (the same variable the tests read), else node on PATH or in /usr/bin.
fn find_node() -> Result<Option<PathBuf>> {
    if let Some(p) = std::env::var_os("LATCHKEY_NODE").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("LATCHKEY_NODE names {}, which does not exist", p.display());
        }
        return Ok(Some(p));
    }
    Ok(sys::find_program("node", &["/usr/bin"]))
}
