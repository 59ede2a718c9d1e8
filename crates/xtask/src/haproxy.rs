//! HAProxy for the load-balancer test: found, or installed with apt.

use crate::sys;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// The haproxy executable, installing Debian's package if it is missing.
pub fn ensure() -> Result<PathBuf> {
    if let Some(p) = find()? {
        return Ok(p);
    }
    eprintln!("xtask: haproxy is missing");
    if let Err(e) = sys::apt_install(&["haproxy"]) {
        bail!("could not install haproxy: {e:#}; the load-balancer test needs it (`sudo apt-get install haproxy`)");
    }
    find()?.context("apt-get installed haproxy, yet it is not on PATH or in /usr/sbin")
}

/// `LATCHKEY_HAPROXY` if set, else haproxy on PATH or in /usr/sbin; the same lookup as the test's.
fn find() -> Result<Option<PathBuf>> {
    if let Some(p) = std::env::var_os("LATCHKEY_HAPROXY").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("LATCHKEY_HAPROXY names {}, which does not exist", p.display());
        }
        return Ok(Some(p));
    }
    Ok(sys::find_program("haproxy", &["/usr/sbin"]))
}
