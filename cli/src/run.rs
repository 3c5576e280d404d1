//! `axum-autoreload run`: build, then run the app or show why there is none.

use std::io;
use std::process::ExitCode;

use crate::args::RunArgs;
use crate::build::{self, Outcome};
use crate::failure;
use crate::report::Report;
use crate::signals::Signals;
use crate::socket::{self, SocketError};
use crate::supervise::{self, Ended, Launch};

/// Why the runner could not do its job (as opposed to the app's build or run
/// failing, which it shows).
#[derive(Debug, thiserror::Error)]
enum RunError {
    /// The signal handlers could not be installed.
    #[error("cannot handle SIGINT and SIGTERM: {0}")]
    Signals(#[source] io::Error),
    /// No listening socket.
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// Cargo could not be run or read.
    #[error("cargo build: {0}")]
    Build(#[source] io::Error),
    /// The app could not be started or waited for.
    #[error("running the app: {0}")]
    App(#[source] io::Error),
    /// The failure server could not run.
    #[error("serving the failure: {0}")]
    Serve(#[source] io::Error),
}

/// Run the flow; the exit code is the app's when it was stopped, 130 or 143 when
/// the runner was stopped during the build, 1 after a failure was shown.
pub(crate) async fn run(args: RunArgs) -> ExitCode {
    match try_run(args).await {
        Ok(code) => code,
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::FAILURE
        }
    }
}

async fn try_run(args: RunArgs) -> Result<ExitCode, RunError> {
    let started_at_ms = supervise::unix_ms();
    // First: a SIGINT from here on is the runner's, never a default exit.
    let mut signals = Signals::install().map_err(RunError::Signals)?;
    // Nothing accepts while cargo builds: requests wait in the socket's backlog.
    let listener = socket::take_or_bind(args.addr)?;
    let (cargo_args, app_args) = args.split_rest();
    let (outcome, build_time) = build::build(cargo_args, args.bin.as_deref(), &mut signals)
        .await
        .map_err(RunError::Build)?;
    let ms = build_time.as_millis();
    let report = match outcome {
        Outcome::Interrupted(signal) => return Ok(ExitCode::from(128 + signal as u8)),
        Outcome::Failed(failure) => {
            tracing::info!("build failed in {ms} ms");
            let root = build::workspace_root(cargo_args);
            Report::build_failed(&failure, &root, &args.editor)
        }
        Outcome::Built(executable) => {
            tracing::info!(
                "build finished in {ms} ms: starting {}",
                executable.path.display()
            );
            let launch = Launch {
                executable: &executable,
                args: app_args,
                fd: socket::fd(&listener),
                build_time,
                started_at_ms,
            };
            match supervise::run(launch, &mut signals)
                .await
                .map_err(RunError::App)?
            {
                Ended::Stopped(status) => return Ok(ExitCode::from(supervise::exit_code(status))),
                Ended::OnItsOwn { status, stderr } => {
                    let root = build::workspace_root(cargo_args);
                    Report::exited(status, &stderr, &root, &args.editor)
                }
            }
        }
    };
    tracing::error!("{}", report.summary);
    tracing::debug!("serving the failure");
    failure::serve(listener, report, &args.allowed_hosts, &mut signals)
        .await
        .map_err(RunError::Serve)?;
    Ok(ExitCode::FAILURE)
}
