//! The command line.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

use crate::editor::{Editor, EDITOR_ENV};

/// Build and run an axum app under watchexec, handing it the listening socket; when
/// the build fails or the app exits on its own, show why in every open browser tab.
#[derive(Debug, Parser)]
#[command(name = "axum-autoreload", version, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// `cargo build` the app and run it on the passed socket; on each SIGHUP build
    /// again while it keeps serving, then swap in the new build.
    ///
    /// Run it under watchexec, which owns the socket and tells of each change
    /// with SIGHUP:
    ///
    ///     watchexec --socket 8080 --signal SIGHUP --stop-signal SIGINT -- axum-autoreload run
    ///
    /// Arguments after `--` go to `cargo build`; arguments after a second `--` go
    /// to the app, as with `cargo run`:
    ///
    ///     axum-autoreload run -- --features dev -- --port 8080
    ///
    /// The app runs a copy of the built binary in its own process group, gets the
    /// socket as from watchexec (LISTEN_FDS=1, LISTEN_FDS_FIRST_FD) and a private
    /// channel (AXUM_AUTORELOAD_CHANNEL, two inherited pipes) that the library
    /// reads: the build's state, the report of a failed build and the timing go to
    /// the app; when the runner is gone the app shuts down.
    ///
    /// On SIGHUP: `cargo build` while the app serves (a newer SIGHUP cancels it);
    /// a new binary is swapped in (SIGINT to the app, wait, start the new one), the
    /// same binary is left running, a failed build is shown above every tab's live
    /// page. When the app exits on its own (or the first build fails), the runner
    /// serves the socket itself until the next change: a page load gets an error
    /// page (500), any other request a 503.
    ///
    /// SIGINT or SIGTERM is passed on to the app, once; the runner then exits with
    /// its status. Under `watchexec --restart` (a runner per change) the same flow
    /// runs once.
    #[command(verbatim_doc_comment)]
    Run(RunArgs),
}

/// `axum-autoreload run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The binary to run when the package has several (passed on to cargo).
    #[arg(long, value_name = "NAME")]
    pub(crate) bin: Option<String>,

    /// How `file:line:col` links open your editor: vscode, vscodium, cursor, zed,
    /// idea, sublime, none, or a URL template with {file}, {line} and {col}.
    #[arg(long, env = EDITOR_ENV, value_name = "SCHEME", default_value_t = Editor::default(), hide_default_value = true)]
    pub(crate) editor: Editor,

    /// Where to listen when no socket is passed (watchexec --socket, systemfd,
    /// LISTEN_FDS); without one, requests made during a restart are refused.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub(crate) addr: SocketAddr,

    /// Another host name the failure server answers besides localhost,
    /// *.localhost and IP addresses (others get 403, as from the app). Repeat for
    /// more. The library also reads AXUM_AUTORELOAD_ALLOWED_HOSTS (comma-separated),
    /// here and in any app built on it, so one setting serves both.
    #[arg(long = "allowed-host", value_name = "HOST", value_delimiter = ',')]
    pub(crate) allowed_hosts: Vec<String>,

    /// Arguments for `cargo build`, then `--` and arguments for the app.
    #[arg(last = true, value_name = "CARGO_ARGS")]
    pub(crate) rest: Vec<String>,
}

impl RunArgs {
    /// The arguments for `cargo build` (before a second `--`) and for the app
    /// (after it).
    pub(crate) fn split_rest(&self) -> (&[String], &[String]) {
        match self.rest.iter().position(|arg| arg == "--") {
            Some(at) => (&self.rest[..at], &self.rest[at + 1..]),
            None => (&self.rest, &[]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> RunArgs {
        let cli = Cli::try_parse_from(["axum-autoreload", "run"].iter().chain(args))
            .expect("valid arguments");
        let Command::Run(run) = cli.command;
        run
    }

    #[test]
    fn cargo_args_then_app_args() {
        let args = run(&["--bin", "web", "--", "--release", "--", "--port", "1"]);
        assert_eq!(args.bin.as_deref(), Some("web"));
        let (cargo, app) = args.split_rest();
        assert_eq!(cargo, ["--release"]);
        assert_eq!(app, ["--port", "1"]);
        assert_eq!(run(&[]).split_rest(), (&[][..], &[][..]));
    }

    #[test]
    fn a_bad_editor_is_a_usage_error() {
        let err =
            Cli::try_parse_from(["axum-autoreload", "run", "--editor", "ed"]).expect_err("refused");
        assert!(err.to_string().contains("neither a preset"), "{err}");
    }
}
