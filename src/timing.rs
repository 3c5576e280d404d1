//! What one turn of the edit loop cost, measured, never estimated: the build and
//! the restart (from the runner, `axum-autoreload run`, through the environment),
//! and the reload (measured by the tab, from the event that made it reload to its
//! page's `load` event). After a reload onto a new server the client script posts
//! its reload time to [`crate::protocol::TIMING_PATH`]; the answer is the whole line, such as
//! `rebuilt 0.62 s · restart 12 ms · reload 85 ms`, which the tab shows for 3 s
//! and logs in its console, and which the server logs once, in the terminal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A graceful shutdown that runs this long is long: the server notes what holds
/// it then, and the timing line names both.
pub(crate) const LONG_SHUTDOWN: Duration = Duration::from_millis(250);

/// The query of the tab's `POST` to [`crate::protocol::TIMING_PATH`].
#[derive(Debug, serde::Deserialize)]
pub(crate) struct TimingQuery {
    /// From the event that made the tab reload to its page's `load` event,
    /// milliseconds, measured by the tab.
    reload_ms: Option<u64>,
}

/// The figures of this process's start.
#[derive(Debug, Default)]
pub(crate) struct Timing {
    figures: Mutex<Figures>,
    /// Whether the line was logged in the terminal.
    logged: AtomicBool,
}

#[derive(Debug, Default, Clone)]
struct Figures {
    /// When the runner received the change, Unix milliseconds.
    change_at_ms: Option<u64>,
    /// `cargo build`'s wall time, milliseconds.
    build_ms: Option<u64>,
    /// The previous app's graceful shutdown, milliseconds, and what held it.
    shutdown: Option<(u64, Option<String>)>,
    /// When this process began to serve, Unix milliseconds.
    serving_at_ms: Option<u64>,
}

impl Figures {
    /// From the change to serving, less the build: the old app's shutdown, the
    /// new one's start, milliseconds.
    fn swap_ms(&self) -> Option<u64> {
        let swap = self
            .serving_at_ms?
            .saturating_sub(self.change_at_ms?)
            .saturating_sub(self.build_ms.unwrap_or(0));
        Some(swap)
    }
}

impl Timing {
    /// The runner's figures for this start ([`crate::protocol::ToApp::Timing`]).
    pub(crate) fn set_by_runner(
        &self,
        change_at_ms: u64,
        build_ms: u64,
        shutdown_ms: Option<u64>,
        held_by: Option<String>,
    ) {
        let mut figures = self.figures.lock().unwrap_or_else(PoisonError::into_inner);
        figures.change_at_ms = Some(change_at_ms);
        figures.build_ms = Some(build_ms);
        figures.shutdown = shutdown_ms.map(|ms| (ms, held_by));
    }

    /// The server serves from now on. Later calls change nothing.
    pub(crate) fn serving(&self) {
        let mut figures = self.figures.lock().unwrap_or_else(PoisonError::into_inner);
        figures.serving_at_ms.get_or_insert_with(unix_ms);
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

    /// The answer to the tab's `POST` to [`crate::protocol::TIMING_PATH`]: the line, as plain text.
    pub(crate) fn response(&self, query: TimingQuery) -> impl axum::response::IntoResponse {
        (
            [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.report(query.reload_ms),
        )
    }

    fn line(&self, reload_ms: Option<u64>) -> String {
        let figures = self
            .figures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut parts = Vec::new();
        if let Some(build) = figures.build_ms {
            parts.push(format!("rebuilt {}", seconds(build)));
        }
        if let Some(swap) = figures.swap_ms() {
            let mut part = format!("swap {swap} ms");
            if let Some((shutdown, held_by)) = &figures.shutdown {
                if u128::from(*shutdown) >= LONG_SHUTDOWN.as_millis() {
                    part = format!("swap {}", seconds(swap));
                    let held_by = held_by.as_deref().unwrap_or("no connection held it");
                    part.push_str(&format!(" (shutdown {}: {held_by})", seconds(*shutdown)));
                }
            }
            parts.push(part);
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

/// `ms` as seconds with two decimals: `0.62 s`.
fn seconds(ms: u64) -> String {
    #[allow(clippy::cast_precision_loss)] // far less than 2^52 ms
    let seconds = ms as f64 / 1000.0;
    format!("{seconds:.2} s")
}

pub(crate) fn unix_ms() -> u64 {
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
        let timing = Timing::default();
        assert_eq!(timing.line(Some(40)), "reload 40 ms");
        assert_eq!(timing.line(None), "reloaded");
        let change_at = unix_ms() - 700;
        timing.set_by_runner(change_at, 620, None, None);
        assert_eq!(timing.line(Some(85)), "rebuilt 0.62 s \u{b7} reload 85 ms");
        timing.serving();
        let swap = timing
            .figures
            .lock()
            .expect("not poisoned")
            .swap_ms()
            .expect("measured");
        assert!(
            (80..1_000).contains(&swap),
            "700 ms less the 620 ms build: {swap}"
        );
        assert_eq!(
            timing.line(Some(85)),
            format!("rebuilt 0.62 s \u{b7} swap {swap} ms \u{b7} reload 85 ms")
        );
    }

    #[test]
    fn a_long_shutdown_is_named_with_what_held_it() {
        let timing = Timing::default();
        let change_at = unix_ms() - 3_000;
        timing.set_by_runner(
            change_at,
            700,
            Some(2_004),
            Some("GET /ws (upgraded)".into()),
        );
        timing.serving();
        let line = timing.line(Some(60));
        assert!(line.starts_with("rebuilt 0.70 s \u{b7} swap 2."), "{line}");
        assert!(
            line.ends_with(" s (shutdown 2.00 s: GET /ws (upgraded)) \u{b7} reload 60 ms"),
            "{line}"
        );
        timing.set_by_runner(change_at, 700, Some(40), Some("GET /ws (upgraded)".into()));
        assert!(
            !timing.line(None).contains("shutdown"),
            "a short one is not named"
        );
    }
}
