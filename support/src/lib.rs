//! Plumbing for axum-autoreload's tests and benchmarks, each piece once, in the
//! module that names it. Not published: it is a dev-dependency of the members
//! that test and benchmark.
#![allow(missing_docs)]

pub mod chromium;
pub mod http;
pub mod process;
pub mod scratch;
pub mod socket;
pub mod sse;
pub mod temp;
pub mod tools;
pub mod wait;

/// Asserts that `text` contains every one of `needles`; a failure names the
/// missing one.
pub fn assert_contains(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "no {needle:?} in {text}");
    }
}
