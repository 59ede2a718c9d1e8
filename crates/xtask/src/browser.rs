//! chromium and chromedriver for the browser tests: found, or installed with apt.

use crate::sys;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// What to tell someone whose machine has no browser and where xtask could not install one.
const INSTALL_HINT: &str = "the browser tests need chromium and chromedriver: install Debian's \
     `chromium` and `chromium-driver` packages (`sudo apt-get install chromium chromium-driver`), \
     or set LATCHKEY_CHROMIUM and LATCHKEY_CHROMEDRIVER to their paths";

/// Where the browser tests' chromium and chromedriver are.
pub struct Browser {
    /// The chromium executable.
    pub chromium: PathBuf,
    /// The chromedriver executable.
    pub chromedriver: PathBuf,
}

/// chromium and chromedriver as they are on this machine, installing them with apt if either is missing.
pub fn ensure() -> Result<Browser> {
    if let Some(found) = find()? {
        return Ok(found);
    }
    eprintln!("xtask: chromium or chromedriver is missing");
    if let Err(e) = sys::apt_install(&["chromium", "chromium-driver"]) {
        bail!("could not install chromium and chromedriver: {e:#}\n{INSTALL_HINT}");
    }
    find()?.with_context(|| {
        format!(
            "apt-get installed chromium and chromium-driver, yet they are not on PATH or in /usr/bin; {INSTALL_HINT}"
        )
    })
}

/// Both programs if both are present; the same lookup as the tests' own (`browser_support.rs`).
fn find() -> Result<Option<Browser>> {
    let chromium = find_one("LATCHKEY_CHROMIUM", "chromium")?;
    let chromedriver = find_one("LATCHKEY_CHROMEDRIVER", "chromedriver")?;
    Ok(chromium.zip(chromedriver).map(|(chromium, chromedriver)| Browser { chromium, chromedriver }))
}

/// The path in `var` if set, else `name` on PATH or in /usr/bin.
fn find_one(var: &str, name: &str) -> Result<Option<PathBuf>> {
    if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        // Someone who names a binary wants that one: installing another would hide their mistake.
        if !p.is_file() {
            bail!("{var} names {}, which does not exist", p.display());
        }
        return Ok(Some(p));
    }
    Ok(sys::find_program(name, &["/usr/bin"]))
}
