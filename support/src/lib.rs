//! Plumbing for axum-autoreload's tests and benchmarks, each piece once under a
//! name that says what it is:
//!
//! - [`process`]: a child process in its own process group, stopped with every
//!   process it started when dropped;
//! - [`scratch`]: temporary directories and a scratch copy of the workspace;
//! - [`socket`]: free ports and a listening socket passed on through `LISTEN_FDS`
//!   (socket activation, as watchexec and systemfd pass it);
//! - [`http`]: a plain HTTP/1.1 client over real TCP that shows the wire as it is;
//! - [`sse`]: a server-sent events client (WHATWG HTML, server-sent events);
//! - [`chromium`]: a headless Chromium session through chromedriver and its tabs;
//! - [`tools`]: programs a test needs on `PATH`, skipped or failed under `CI=true`;
//! - [`wait`]: waiting for a condition with a time limit.
//!
//! Not published: it is a dev-dependency of the members that test and benchmark.
#![allow(missing_docs)]

pub mod chromium;
pub mod http;
pub mod process;
pub mod scratch;
pub mod socket;
pub mod sse;
pub mod tools;
pub mod wait;

/// Asserts that `text` contains every one of `needles`; a failure names the
/// missing one.
pub fn assert_contains(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "no {needle:?} in {text}");
    }
}
