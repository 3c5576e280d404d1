//! What one turn of the edit loop cost, measured, never estimated: the build and
//! the restart (from the runner, `axum-autoreload run`, through the environment),
//! and the reload (measured by the tab, from the event that made it reload to its
//! page's `load` event). After a reload onto a new server the client script posts
//! its reload time to [`TIMING_PATH`]; the answer is the whole line, such as
//! `rebuilt 0.62 s · restart 12 ms · reload 85 ms`, which the tab shows for 3 s
//! and logs in its console, and which the server logs once, in the terminal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// Path that takes the tab's `POST ?reload_ms=<milliseconds>` and answers the
/// timing line (`text/plain`).
pub const TIMING_PATH: &str = "/auto_refresh/timing";

/// Environment variable the runner sets: how long `cargo build` took, in
/// milliseconds.
pub const BUILD_MS_ENV: &str = "AXUM_AUTORELOAD_BUILD_MS";

/// Environment variable the runner sets: when it started, right after the
/// previous process exited, in milliseconds since the Unix epoch.
pub const STARTED_AT_MS_ENV: &str = "AXUM_AUTORELOAD_STARTED_AT_MS";

/// The query of the tab's `POST` to [`TIMING_PATH`].
#[derive(Debug, serde::Deserialize)]
pub(crate) struct TimingQuery {
    /// From the event that made the tab reload to its page's `load` event,
    /// milliseconds, measured by the tab.
    reload_ms: Option<u64>,
}

/// The figures of this process's start.
#[derive(Debug, Default)]
pub(crate) struct Timing {
    /// `cargo build`'s wall time, milliseconds.
    build_ms: Option<u64>,
    /// When the runner started, Unix milliseconds.
    started_at_ms: Option<u64>,
    /// From the runner's start to serving, less the build, milliseconds.
    restart_ms: OnceLock<u64>,
    /// Whether the line was logged in the terminal.
    logged: AtomicBool,
}

impl Timing {
    /// The figures the runner passed, if it did.
    pub(crate) fn from_env() -> Self {
        let read = |name: &str| std::env::var(name).ok()?.trim().parse::<u64>().ok();
        Self {
            build_ms: read(BUILD_MS_ENV),
            started_at_ms: read(STARTED_AT_MS_ENV),
            ..Self::default()
        }
    }

    /// The server serves from now on: the restart ends here. Later calls change
    /// nothing.
    pub(crate) fn serving(&self) {
        if let Some(started_at) = self.started_at_ms {
            let now = unix_ms();
            let restart = now
                .saturating_sub(started_at)
                .saturating_sub(self.build_ms.unwrap_or(0));
            let _ = self.restart_ms.set(restart);
        }
    }

    /// The line for a tab that reloaded in `reload_ms` milliseconds; logged at
    /// `info` the first time, at `debug` after.
    pub(crate) fn report(&self, reload_ms: Option<u64>) -> String {
        let line = self.line(reload_ms);
        if self.logged.swap(true, Ordering::Relaxed) {
            tracing::debug!("{line}");
        } else {
            tracing::info!("{line}");
        }
        line
    }

    /// The answer to the tab's `POST` to [`TIMING_PATH`]: the line, as plain text.
    pub(crate) fn response(&self, query: TimingQuery) -> impl axum::response::IntoResponse {
        (
            [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.report(query.reload_ms),
        )
    }

    fn line(&self, reload_ms: Option<u64>) -> String {
        let mut parts = Vec::new();
        if let Some(build) = self.build_ms {
            #[allow(clippy::cast_precision_loss)] // a build takes far less than 2^52 ms
            parts.push(format!("rebuilt {:.2} s", build as f64 / 1000.0));
        }
        if let Some(restart) = self.restart_ms.get() {
            parts.push(format!("restart {restart} ms"));
        }
        if let Some(reload) = reload_ms {
            parts.push(format!("reload {reload} ms"));
        }
        if parts.is_empty() {
            "reloaded".to_owned()
        } else {
            parts.join(" \u{b7} ")
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_what_was_measured_and_nothing_else() {
        let started = unix_ms() - 700;
        let timing = Timing {
            build_ms: Some(620),
            started_at_ms: Some(started),
            ..Timing::default()
        };
        assert_eq!(timing.line(Some(85)), "rebuilt 0.62 s \u{b7} reload 85 ms");
        timing.serving();
        let restart = *timing.restart_ms.get().expect("measured");
        assert!(
            (80..1_000).contains(&restart),
            "700 ms less the 620 ms build: {restart}"
        );
        assert_eq!(
            timing.line(Some(85)),
            format!("rebuilt 0.62 s \u{b7} restart {restart} ms \u{b7} reload 85 ms")
        );
        assert_eq!(Timing::default().line(Some(40)), "reload 40 ms");
        assert_eq!(Timing::default().line(None), "reloaded");
    }
}
