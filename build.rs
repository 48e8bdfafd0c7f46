//! Facts about the build machine that decide which tests can run here, as cfgs, so that
//! a test that cannot run is reported `ignored` with its reason instead of passing
//! without checking (STYLE.md 3). Nothing in `src/` reads them.
//!
//! - `postdesk_corpus`: `../shared/corpus` (the mail corpus beside the repository) is a
//!   directory. `tests/corpus.rs` runs its checks only then.
//! - `postdesk_root`: the build runs as root. `tests/systemd.rs` checks the owners that
//!   `systemd-tmpfiles` sets only then (nobody else may chown).
//! - `postdesk_journald`: journald's socket exists. `tests/systemd.rs` cannot see the
//!   stderr fallback then.
//!
//! Each test checks its condition again when it runs and fails, saying "rebuild", if the
//! machine changed since the build: a stale cfg never turns into a silent pass.
//!
//! What is watched: cargo reruns a build script at every build while a
//! `rerun-if-changed` path is missing, and each rerun rebuilds the crate. So a path is
//! watched only while it exists: the corpus when it is there, else `../shared` (where it
//! would appear) when that is there, and journald's socket when it is there. A corpus
//! appearing where `../shared` did not exist, journald starting, or a build under another
//! user is caught by the tests' own check above.

use std::path::Path;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    for cfg in ["postdesk_corpus", "postdesk_root", "postdesk_journald"] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
    }

    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let shared = Path::new(&manifest).join("../shared");
    if shared.join("corpus").is_dir() {
        println!("cargo::rustc-cfg=postdesk_corpus");
        println!("cargo::rerun-if-changed=../shared/corpus");
    } else if shared.is_dir() {
        println!("cargo::rerun-if-changed=../shared");
    }

    if is_root() {
        println!("cargo::rustc-cfg=postdesk_root");
    }

    let journald = "/run/systemd/journal/socket";
    if Path::new(journald).exists() {
        println!("cargo::rustc-cfg=postdesk_journald");
        println!("cargo::rerun-if-changed={journald}");
    }
}

/// The same test as `tests/systemd.rs`: `/proc/self` belongs to the effective user.
#[cfg(unix)]
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[cfg(not(unix))]
fn is_root() -> bool {
    false
}
