//! `axum-autoreload`: runs an axum app under watchexec. It builds the app with
//! `cargo build`, hands it the listening socket, rebuilds on each change while the
//! last good app keeps serving, and shows a failed build or a crash in every open
//! tab.
//!
//! ```sh
//! watchexec --socket 8080 --signal SIGHUP -- axum-autoreload run
//! ```

mod app;
mod args;
mod binary;
mod build;
mod channel;
mod diagnostic;
mod editor;
mod failure;
mod panic;
mod report;
mod run;
mod signals;
mod socket;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        args::Command::Run(args) => runtime.block_on(run::run(args)),
    }
}
