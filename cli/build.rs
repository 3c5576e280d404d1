//! Marks the tests that need watchexec as ignored when it is missing, except
//! under `CI=true` (see `support/build/tools.rs`). Not in the published package:
//! it serves the tests only.

#[path = "../support/build/tools.rs"]
mod tools;

fn main() {
    tools::emit(&[tools::WATCHEXEC]);
}
