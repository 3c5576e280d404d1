//! Marks the browser tests as ignored when chromium or chromedriver is missing,
//! except under `CI=true` (see `support/build/tools.rs`). Not in the published
//! package: it serves the tests only.

#[path = "support/build/tools.rs"]
mod tools;

fn main() {
    tools::emit(&[tools::CHROMIUM]);
}
