//! Puts the git revision into `latchkey --version` (as `LATCHKEY_GIT_REV`).
//!
//! The revision comes from `LATCHKEY_GIT_REV` if set (a build without `.git`,
//! such as a container build, passes it in), else from `git rev-parse --short
//! HEAD`, else it is "unknown". The script reruns only when HEAD or the branch
//! it points to moves, not on every build.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LATCHKEY_GIT_REV");
    let rev = match std::env::var("LATCHKEY_GIT_REV") {
        Ok(r) if !r.trim().is_empty() => r.trim().to_string(),
        _ => {
            watch_git();
            git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into())
        }
    };
    println!("cargo:rustc-env=LATCHKEY_GIT_REV={rev}");
}

/// Reruns this script when HEAD moves: HEAD itself (a checkout), the branch it
/// names (a commit), and packed-refs (where the branch may live). In a worktree
/// HEAD is in the worktree's git dir and the branches in the common one. Only
/// files that exist are named: cargo treats a missing one as always changed.
fn watch_git() {
    let (Some(git_dir), Some(common)) =
        (git(&["rev-parse", "--absolute-git-dir"]), git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]))
    else {
        return;
    };
    let mut watch = vec![PathBuf::from(&git_dir).join("HEAD"), PathBuf::from(&common).join("packed-refs")];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch.push(PathBuf::from(&common).join(branch));
    }
    for p in watch.into_iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}
