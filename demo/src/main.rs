//! The axum-autoreload demo app, built only on the library's public API.
//!
//! Run it under watchexec so that every edit restarts it on the same socket:
//! `watchexec --socket 8080 --restart --stop-signal SIGINT -- cargo run`.

mod app;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    app::run(app::Args::parse()).await
}
