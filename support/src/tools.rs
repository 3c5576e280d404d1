//! Programs a test needs on `PATH`, found with the `which` crate. A test whose
//! program is missing is built ignored (see [`find`]); a benchmark is skipped on
//! a developer's machine and fails under CI (`CI=true`).

use std::path::PathBuf;

/// A program a test needs on `PATH`, and how to install it.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    pub name: &'static str,
    pub install: &'static str,
}

const APT_CHROMIUM: &str = "apt-get install -y chromium chromium-driver";
pub const CHROMIUM: Tool = Tool::new("chromium", APT_CHROMIUM);
pub const CHROMEDRIVER: Tool = Tool::new("chromedriver", APT_CHROMIUM);
pub const WATCHEXEC: Tool = Tool::new("watchexec", "cargo install --locked watchexec-cli");
pub const WRK: Tool = Tool::new("wrk", "apt-get install -y wrk");

impl Tool {
    const fn new(name: &'static str, install: &'static str) -> Self {
        Self { name, install }
    }
}

/// Whether this run is CI's (`CI=true`), where a missing tool fails the test.
pub fn under_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Finds each of `tools` on `PATH` and returns their absolute paths, in the same
/// order; panics naming the missing ones and how to install them. The tests that
/// call it are built ignored when one is missing (their package's build script
/// sets a cfg, see `support/build/tools.rs`), except under `CI=true`: a test
/// that gets here runs, or fails.
pub fn find<const N: usize>(tools: [Tool; N]) -> [PathBuf; N] {
    locate(tools).unwrap_or_else(|missing| panic!("missing on PATH: {missing}"))
}

/// [`find`] for the benchmarks, which cargo cannot mark ignored: when a tool is
/// missing, panics under CI, otherwise prints why the benchmark is skipped and
/// returns `None`.
pub fn find_or_skip<const N: usize>(tools: [Tool; N]) -> Option<[PathBuf; N]> {
    match locate(tools) {
        Ok(found) => Some(found),
        Err(missing) => {
            assert!(
                !under_ci(),
                "CI=true and tools are missing on PATH: {missing}"
            );
            eprintln!("skipping: {missing} missing on PATH");
            None
        }
    }
}

/// The absolute paths of `tools` on `PATH`, or the missing ones with how to
/// install them.
fn locate<const N: usize>(tools: [Tool; N]) -> Result<[PathBuf; N], String> {
    let found = tools.map(|tool| which::which(tool.name).ok());
    let missing: Vec<String> = tools
        .iter()
        .zip(&found)
        .filter(|(_, path)| path.is_none())
        .map(|(tool, _)| format!("{} (install: `{}`)", tool.name, tool.install))
        .collect();
    if !missing.is_empty() {
        return Err(missing.join(", "));
    }
    Ok(found.map(|path| path.expect("every tool was found")))
}
