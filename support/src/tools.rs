//! Programs a test needs on `PATH`: found with the `which` crate, or skipped on a
//! developer's machine and failed under CI (`CI=true`).

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
/// order. When one is missing: panics under CI, otherwise prints why the test is
/// skipped and returns `None`.
pub fn find_or_skip<const N: usize>(tools: [Tool; N]) -> Option<[PathBuf; N]> {
    let found = tools.map(|tool| which::which(tool.name).ok());
    let missing: Vec<String> = tools
        .iter()
        .zip(&found)
        .filter(|(_, path)| path.is_none())
        .map(|(tool, _)| format!("{} (install: `{}`)", tool.name, tool.install))
        .collect();
    if !missing.is_empty() {
        let missing = missing.join(", ");
        assert!(
            !under_ci(),
            "CI=true and tools are missing on PATH: {missing}"
        );
        eprintln!("skipping: {missing} missing on PATH");
        return None;
    }
    Some(found.map(|path| path.expect("every tool was found")))
}
