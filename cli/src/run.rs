//! `axum-autoreload run`: the edit loop's supervisor. It builds, runs the app on
//! the passed socket, and on each change (SIGHUP, watchexec's `--signal SIGHUP`)
//! builds again while the last good app keeps serving:
//!
//! - the build succeeds with another binary: the swap (SIGINT to the app, wait for
//!   its exit, start the new binary on the same socket);
//! - it succeeds with the same binary: nothing restarts, the tabs' "building…"
//!   badge clears;
//! - it fails: the app keeps serving and every tab shows the report above its
//!   page; with no app running, the runner serves the report itself
//!   ([`crate::failure`]);
//! - a newer change during the build cancels it and starts again.
//!
//! SIGINT or SIGTERM stops the app (passed on, once) and the runner. Under
//! watchexec's `--restart` each change starts a new runner instead: the same flow,
//! once.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use axum_autoreload::listener::Listener;
use axum_autoreload::protocol::ToApp;
use nix::sys::signal::Signal;

use crate::app::{self, App, Launch};
use crate::args::RunArgs;
use crate::binary::{self, Copies};
use crate::build::{self, Build, Executable, Outcome};
use crate::failure::FailureServer;
use crate::report::Report;
use crate::signals::{Event, Signals};
use crate::socket::{self, SocketError};

/// Why the runner could not do its job (as opposed to the app's build or run
/// failing, which it shows).
#[derive(Debug, thiserror::Error)]
enum RunError {
    /// The signal handlers could not be installed.
    #[error("cannot handle SIGHUP, SIGINT and SIGTERM: {0}")]
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

/// Run the loop; the exit code is the app's when it was stopped, 130 or 143 when
/// the runner was stopped with no app running, 1 after an error of its own.
pub(crate) async fn run(args: RunArgs) -> ExitCode {
    match try_run(args).await {
        Ok(code) => code,
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::FAILURE
        }
    }
}

/// What serves the socket now.
#[derive(Debug)]
enum Serving {
    /// Nothing: requests wait in the socket's backlog.
    Nothing,
    /// The last good app.
    App(Box<App>),
    /// The runner's failure server, showing why there is no app.
    Failure(FailureServer),
}

impl Serving {
    /// Tell the tabs a build started.
    async fn building(&mut self) {
        match self {
            Self::Nothing => {}
            Self::App(app) => app.tell(&ToApp::Building).await,
            Self::Failure(server) => server.building(),
        }
    }

    /// Completes when the app exits on its own; never for anything else.
    async fn exited(&mut self) -> io::Result<std::process::ExitStatus> {
        match self {
            Self::App(app) => app.exited().await,
            _ => std::future::pending().await,
        }
    }

    /// Stop what serves, passing `signal` on to an app; its shutdown's length
    /// and what held it, and its exit code.
    async fn stop(self, signal: Signal) -> Result<Stopped, RunError> {
        match self {
            Self::Nothing => Ok(Stopped::default()),
            Self::Failure(server) => {
                server.stop().await.map_err(RunError::Serve)?;
                Ok(Stopped {
                    exit_code: Some(1),
                    ..Stopped::default()
                })
            }
            Self::App(app) => {
                let path = app.path().to_owned();
                let ended = app.stop(signal).await.map_err(RunError::App)?;
                binary::remove(&path);
                Ok(Stopped {
                    exit_code: Some(app::exit_code(ended.status)),
                    shutdown: ended.news.shutdown,
                })
            }
        }
    }
}

/// What stopping left.
#[derive(Debug, Default)]
struct Stopped {
    /// The app's exit code (1 for the failure server); none when nothing ran.
    exit_code: Option<u8>,
    /// The app's graceful shutdown, milliseconds, and what held it.
    shutdown: Option<(u64, Option<String>)>,
}

/// The runner's state across changes.
struct Runner<'a> {
    args: &'a RunArgs,
    listener: Listener,
    serving: Serving,
    copies: Copies,
    /// When the change being built arrived, Unix milliseconds.
    change_at_ms: u64,
}

async fn try_run(args: RunArgs) -> Result<ExitCode, RunError> {
    let change_at_ms = app::unix_ms();
    // First: a signal from here on is the runner's, never a default exit.
    let mut signals = Signals::install().map_err(RunError::Signals)?;
    // Nothing accepts while cargo builds: requests wait in the socket's backlog.
    let listener = socket::take_or_bind(args.addr)?;
    let mut runner = Runner {
        args: &args,
        listener,
        serving: Serving::Nothing,
        copies: Copies::default(),
        change_at_ms,
    };
    let signal = runner.run(&mut signals).await?;
    let stopped = std::mem::replace(&mut runner.serving, Serving::Nothing)
        .stop(signal)
        .await?;
    let code = stopped.exit_code.unwrap_or_else(|| 128 + signal as u8);
    Ok(ExitCode::from(code))
}

impl Runner<'_> {
    /// Build and serve, change after change, until SIGINT or SIGTERM; returns it.
    async fn run(&mut self, signals: &mut Signals) -> Result<Signal, RunError> {
        let (cargo_args, _) = self.args.split_rest();
        loop {
            self.serving.building().await;
            let mut build =
                Build::start(cargo_args, self.args.bin.as_deref()).map_err(RunError::Build)?;
            let finished = loop {
                tokio::select! {
                    finished = build.finished() => break Some(finished.map_err(RunError::Build)?),
                    event = signals.recv() => {
                        build.cancel().await;
                        match event {
                            Event::Stop(signal) => return Ok(signal),
                            Event::Change => break None,
                        }
                    }
                    exited = self.serving.exited() => self.app_exited(exited).await?,
                }
            };
            let Some((outcome, build_time)) = finished else {
                tracing::info!("changed again: building anew");
                self.change_at_ms = app::unix_ms();
                continue;
            };
            let build_ms = u64::try_from(build_time.as_millis()).unwrap_or(u64::MAX);
            match outcome {
                Outcome::Failed(failure) => {
                    tracing::info!("build failed in {build_ms} ms");
                    let root = build::workspace_root(cargo_args).await;
                    let live = matches!(self.serving, Serving::App(_));
                    self.show(Report::build_failed(
                        &failure,
                        &root,
                        &self.args.editor,
                        live,
                    ))
                    .await?;
                }
                Outcome::Built(executable) => self.built(executable, build_ms).await?,
            }
            loop {
                tokio::select! {
                    event = signals.recv() => match event {
                        Event::Stop(signal) => return Ok(signal),
                        Event::Change => break,
                    },
                    exited = self.serving.exited() => self.app_exited(exited).await?,
                }
            }
            self.change_at_ms = app::unix_ms();
        }
    }

    /// A build succeeded: swap to its binary, unless it is the one running.
    async fn built(&mut self, executable: Executable, build_ms: u64) -> Result<(), RunError> {
        let running = match &self.serving {
            Serving::App(app) => Some(app.path().to_owned()),
            _ => None,
        };
        let unchanged = running.is_some() && executable.fresh;
        let staged = if unchanged {
            None
        } else {
            let built = executable.path.clone();
            let mut copies = std::mem::take(&mut self.copies);
            let (copies, staged) = tokio::task::spawn_blocking(move || {
                let staged = copies.stage(&built, running.as_deref());
                (copies, staged)
            })
            .await
            .map_err(|err| RunError::App(io::Error::other(err)))?;
            self.copies = copies;
            staged.map_err(RunError::App)?
        };
        let Some(copy) = staged else {
            tracing::info!("build finished in {build_ms} ms: the binary is the one running");
            if let Serving::App(app) = &mut self.serving {
                app.tell(&ToApp::Clear).await;
            }
            return Ok(());
        };
        tracing::info!(
            "build finished in {build_ms} ms: starting {}",
            executable.path.display()
        );
        let stopped = std::mem::replace(&mut self.serving, Serving::Nothing)
            .stop(Signal::SIGINT)
            .await?;
        self.start(&copy, &executable, build_ms, stopped.shutdown)
            .await
    }

    /// Start the app from `copy`.
    async fn start(
        &mut self,
        copy: &PathBuf,
        executable: &Executable,
        build_ms: u64,
        shutdown: Option<(u64, Option<String>)>,
    ) -> Result<(), RunError> {
        let (_, app_args) = self.args.split_rest();
        let (shutdown_ms, held_by) = shutdown.unzip();
        let app = App::start(Launch {
            path: copy,
            manifest_dir: &executable.manifest_dir,
            args: app_args,
            listener: &self.listener,
            timing: ToApp::Timing {
                change_at_ms: self.change_at_ms,
                build_ms,
                shutdown_ms,
                held_by: held_by.flatten(),
            },
        })
        .await
        .map_err(RunError::App)?;
        self.serving = Serving::App(Box::new(app));
        Ok(())
    }

    /// Show `report`: above the live page of the app that keeps serving, or on
    /// the failure server when there is none.
    async fn show(&mut self, report: Report) -> Result<(), RunError> {
        tracing::error!("{}", report.summary);
        if let Serving::App(app) = &mut self.serving {
            app.tell(&ToApp::Report {
                html: report.fragment,
            })
            .await;
            tracing::info!("the last good app keeps serving");
            return Ok(());
        }
        let server = FailureServer::start(&self.listener, report, &self.args.allowed_hosts)
            .map_err(RunError::Serve)?;
        // The one it replaces, if any, ends its streams: the tabs get the new one.
        if let Serving::Failure(old) =
            std::mem::replace(&mut self.serving, Serving::Failure(server))
        {
            // Its streams are told; an error of a server thrown away is logged,
            // and the runner goes on.
            if let Err(err) = old.stop().await {
                tracing::warn!("stopping the replaced failure server: {err}");
            }
        }
        Ok(())
    }

    /// The app exited without being asked to: show why.
    async fn app_exited(
        &mut self,
        exited: io::Result<std::process::ExitStatus>,
    ) -> Result<(), RunError> {
        let status = exited.map_err(RunError::App)?;
        let Serving::App(app) = std::mem::replace(&mut self.serving, Serving::Nothing) else {
            return Ok(());
        };
        let path = app.path().to_owned();
        let ended = app.ended(status).await;
        binary::remove(&path);
        let (cargo_args, _) = self.args.split_rest();
        let root = build::workspace_root(cargo_args).await;
        self.show(Report::exited(&ended, &root, &self.args.editor))
            .await
    }
}
