//! The build scripts' half of the tools check, included by path in the build
//! script of each package whose tests need a program on `PATH` (std only: it
//! compiles before any dependency).
//!
//! For each set of tools a test needs, [`emit`] sets a cfg when one is missing
//! and `CI` is not `true`; the test carries
//! `#[cfg_attr(<cfg>, ignore = "needs …")]`, so cargo test's summary counts it as
//! ignored. Under `CI=true` the cfg is never set: the test runs, and fails on the
//! missing tool (`dev_support::tools::find`).
// A build script talks to cargo on stdout, and uses the needs its tests have.
#![allow(clippy::print_stdout, dead_code)]

use std::env;
use std::path::{Path, PathBuf};

/// A cfg and the programs whose absence sets it.
pub(crate) type Needs = (&'static str, &'static [&'static str]);

/// Chromium and its WebDriver, for the browser tests.
pub(crate) const CHROMIUM: Needs = ("missing_chromium", &["chromium", "chromedriver"]);
/// watchexec, for the tests that run an app under it.
pub(crate) const WATCHEXEC: Needs = ("missing_watchexec", &["watchexec"]);

/// Declares each cfg of `needs`, sets those whose tools are missing (unless
/// `CI=true`), and tells cargo when to run this again. Every tool found: when its
/// file changes (removed, say). A tool missing: also when `PATH` or `CI` change, or
/// a directory on `PATH` changes (an install). With every tool there, neither
/// `PATH` nor `CI` is watched: they make no difference then, and a change of
/// either (another shell, `.ci/run`) would rebuild the package for nothing. A
/// missing file is never named: cargo would run the script, and rebuild the
/// package, on every build. No `cargo::warning`: cargo would repeat it on every
/// build of the package, `cargo run` included; the test summary names what an
/// ignored test needs, and a test run with `--include-ignored` fails saying how to
/// install it.
pub(crate) fn emit(needs: &[Needs]) {
    let ci = env::var("CI").as_deref() == Ok("true");
    let mut any_missing = false;
    for (cfg, tools) in needs {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        let mut missing = false;
        for tool in *tools {
            match find(tool) {
                Some(file) => println!("cargo::rerun-if-changed={}", file.display()),
                None => missing = true,
            }
        }
        any_missing |= missing;
        if missing && !ci {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
    if any_missing {
        println!("cargo::rerun-if-env-changed=PATH");
        println!("cargo::rerun-if-env-changed=CI");
        for dir in path_dirs().into_iter().filter(|dir| dir.is_dir()) {
            println!("cargo::rerun-if-changed={}", dir.display());
        }
    }
}

/// The absolute directories on `PATH`.
fn path_dirs() -> Vec<PathBuf> {
    let path = env::var_os("PATH").unwrap_or_default();
    let dirs = env::split_paths(&path);
    dirs.filter(|dir| dir.is_absolute()).collect()
}

/// `tool` in the first directory on `PATH` that has it as an executable file.
fn find(tool: &str) -> Option<PathBuf> {
    path_dirs()
        .into_iter()
        .map(|dir| dir.join(tool))
        .find(|file| is_executable(file))
}

fn is_executable(file: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    file.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}
