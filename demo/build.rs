//! Marks the tests that need chromium, chromedriver or watchexec as ignored when
//! one is missing, except under `CI=true` (see `support/build/tools.rs`).

#[path = "../support/build/tools.rs"]
mod tools;

fn main() {
    tools::emit(&[tools::CHROMIUM, tools::WATCHEXEC]);
}
