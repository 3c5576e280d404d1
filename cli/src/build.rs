//! `cargo build` with JSON messages: the diagnostics, the executable, the outcome.
//!
//! Cargo is run with `--message-format=json-diagnostic-rendered-ansi`: its stdout
//! is one JSON message a line (`compiler-message`, `compiler-artifact`,
//! `build-finished`; see cargo's "External tools" chapter), read with
//! [`cargo_metadata::Message::parse_stream`]; its stderr ("Compiling…",
//! "Finished…") goes to the terminal as it is. Each diagnostic's `rendered` text,
//! with rustc's colours, is printed to stderr as cargo itself would.

use std::io::{self, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use cargo_metadata::diagnostic::{Diagnostic, DiagnosticLevel};
use cargo_metadata::{Message, TargetKind};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::task::JoinHandle;

/// The executable a successful build made.
#[derive(Debug)]
pub(crate) struct Executable {
    /// Absolute path of the binary.
    pub(crate) path: PathBuf,
    /// The directory of its package's `Cargo.toml` (`CARGO_MANIFEST_DIR`, as
    /// `cargo run` sets it).
    pub(crate) manifest_dir: PathBuf,
    /// Cargo did not build it anew (its `compiler-artifact` message's `fresh`).
    pub(crate) fresh: bool,
}

/// Why there is nothing to run.
#[derive(Debug)]
pub(crate) enum Failure {
    /// rustc reported errors; warnings come along.
    Compile {
        errors: Vec<Diagnostic>,
        warnings: Vec<Diagnostic>,
    },
    /// Cargo failed without a compiler error (a broken `Cargo.toml`, a bad
    /// argument, a failing build script, a network error).
    Cargo(ExitStatus),
    /// The build succeeded, but which binary to run is not clear.
    Target(String),
}

/// How a build ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    Built(Executable),
    Failed(Failure),
}

/// What cargo's messages said.
#[derive(Debug, Default)]
struct Messages {
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    /// Name and executable of every binary (or example) built.
    executables: Vec<(String, Executable)>,
}

/// How long cargo gets to stop on SIGINT before its process group is killed.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// A `cargo build` under way, in a process group of its own: a build that a newer
/// change makes useless is ended with every rustc and build script it started.
#[derive(Debug)]
pub(crate) struct Build {
    started: Instant,
    group: Pid,
    bin: Option<String>,
    reading: JoinHandle<io::Result<(Messages, ExitStatus)>>,
}

impl Build {
    /// Start `cargo build [--bin bin] cargo_args`.
    ///
    /// # Errors
    ///
    /// When cargo cannot be started.
    pub(crate) fn start(cargo_args: &[String], bin: Option<&str>) -> io::Result<Self> {
        let started = Instant::now();
        let mut child = Command::new(cargo())
            .args(["build", "--message-format=json-diagnostic-rendered-ansi"])
            .args(bin.iter().flat_map(|bin| ["--bin", bin]))
            .args(cargo_args)
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|err| io::Error::new(err.kind(), format!("cannot run cargo: {err}")))?;
        let group = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?;
        let reading = tokio::task::spawn_blocking(move || {
            let messages = read_messages(BufReader::new(stdout));
            let status = child.wait()?;
            Ok((messages?, status))
        });
        Ok(Self {
            started,
            group,
            bin: bin.map(str::to_owned),
            reading,
        })
    }

    /// Wait for the build to end; how it ended and how long cargo ran (wall
    /// time). Cancel safe.
    ///
    /// # Errors
    ///
    /// When cargo's output cannot be read or cargo cannot be waited for.
    pub(crate) async fn finished(&mut self) -> io::Result<(Outcome, Duration)> {
        let (messages, status) = (&mut self.reading).await.map_err(io::Error::other)??;
        let elapsed = self.started.elapsed();
        let outcome = if !messages.errors.is_empty() {
            Outcome::Failed(Failure::Compile {
                errors: messages.errors,
                warnings: messages.warnings,
            })
        } else if !status.success() {
            Outcome::Failed(Failure::Cargo(status))
        } else {
            choose(messages.executables, self.bin.as_deref())
        };
        Ok((outcome, elapsed))
    }

    /// End the build: SIGINT to cargo's process group (cargo, rustc, build
    /// scripts), SIGKILL after [`STOP_GRACE`]; returns once cargo has exited.
    pub(crate) async fn cancel(mut self) {
        let _ = killpg(self.group, Signal::SIGINT);
        if tokio::time::timeout(STOP_GRACE, &mut self.reading)
            .await
            .is_err()
        {
            tracing::warn!(
                "cargo still runs {} s after SIGINT: killing it",
                STOP_GRACE.as_secs()
            );
            let _ = killpg(self.group, Signal::SIGKILL);
            let _ = self.reading.await;
        }
        // What cargo started and left behind in its group.
        let _ = killpg(self.group, Signal::SIGKILL);
    }
}

/// The cargo to run: the one that runs us (`CARGO`), or the one on `PATH`.
fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Read cargo's messages to the end, printing each diagnostic to stderr.
fn read_messages(stdout: impl io::BufRead) -> io::Result<Messages> {
    let mut messages = Messages::default();
    let stderr = io::stderr();
    for message in Message::parse_stream(stdout) {
        match message? {
            Message::CompilerMessage(compiler) => {
                let diagnostic = compiler.message;
                if let Some(rendered) = &diagnostic.rendered {
                    stderr.lock().write_all(rendered.as_bytes())?;
                }
                if is_summary(&diagnostic) {
                    continue;
                }
                match diagnostic.level {
                    DiagnosticLevel::Error | DiagnosticLevel::Ice => {
                        messages.errors.push(diagnostic);
                    }
                    DiagnosticLevel::Warning => messages.warnings.push(diagnostic),
                    _ => {}
                }
            }
            Message::CompilerArtifact(artifact) => {
                let runnable = artifact
                    .target
                    .kind
                    .iter()
                    .any(|kind| matches!(kind, TargetKind::Bin | TargetKind::Example));
                if let (true, Some(executable)) = (runnable, artifact.executable) {
                    let manifest_dir = artifact
                        .manifest_path
                        .parent()
                        .map(|dir| dir.as_std_path().to_owned())
                        .unwrap_or_default();
                    messages.executables.push((
                        artifact.target.name,
                        Executable {
                            path: executable.into_std_path_buf(),
                            manifest_dir,
                            fresh: artifact.fresh,
                        },
                    ));
                }
            }
            Message::TextLine(line) => writeln!(stderr.lock(), "{line}")?,
            _ => {}
        }
    }
    Ok(messages)
}

/// rustc's closing lines ("aborting due to 2 previous errors", "3 warnings
/// emitted"): printed, but not diagnostics of their own.
fn is_summary(diagnostic: &Diagnostic) -> bool {
    diagnostic.spans.is_empty()
        && (diagnostic.message.starts_with("aborting due to")
            || diagnostic.message.ends_with("warning emitted")
            || diagnostic.message.ends_with("warnings emitted"))
}

/// The executable to run: the one named by `--bin`, else the only one built.
fn choose(executables: Vec<(String, Executable)>, bin: Option<&str>) -> Outcome {
    let mut chosen: Vec<_> = executables
        .into_iter()
        .filter(|(name, _)| bin.is_none_or(|bin| bin == name))
        .collect();
    match chosen.len() {
        1 => Outcome::Built(chosen.remove(0).1),
        0 => Outcome::Failed(Failure::Target(
            "cargo built no binary to run: is there a [[bin]] target (src/main.rs)?".to_owned(),
        )),
        _ => {
            let names: Vec<_> = chosen.iter().map(|(name, _)| name.as_str()).collect();
            Outcome::Failed(Failure::Target(format!(
                "cargo built several binaries ({}): choose one with `axum-autoreload run --bin NAME`",
                names.join(", ")
            )))
        }
    }
}

/// The workspace root: where rustc's and panics' relative paths start. Asked of
/// `cargo metadata` (honouring `--manifest-path` in `cargo_args`) only when there
/// is a failure to show, on a blocking thread; the current directory when that
/// fails.
pub(crate) async fn workspace_root(cargo_args: &[String]) -> PathBuf {
    let cargo_args = cargo_args.to_vec();
    tokio::task::spawn_blocking(move || ask_workspace_root(&cargo_args))
        .await
        .unwrap_or_default()
}

fn ask_workspace_root(cargo_args: &[String]) -> PathBuf {
    let mut command = cargo_metadata::MetadataCommand::new();
    command.cargo_path(cargo()).no_deps();
    if let Some(manifest) = manifest_path(cargo_args) {
        command.manifest_path(manifest);
    }
    match command.exec() {
        Ok(metadata) => metadata.workspace_root.into_std_path_buf(),
        Err(err) => {
            tracing::debug!("cargo metadata: {err}");
            std::env::current_dir().unwrap_or_default()
        }
    }
}

/// The value of `--manifest-path` among cargo's arguments.
fn manifest_path(cargo_args: &[String]) -> Option<&Path> {
    let mut args = cargo_args.iter();
    while let Some(arg) = args.next() {
        if arg == "--manifest-path" {
            return args.next().map(Path::new);
        }
        if let Some(path) = arg.strip_prefix("--manifest-path=") {
            return Some(Path::new(path));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two of rustc's messages as cargo 1.95 prints them, shortened.
    const MESSAGES: &str = r#"{"reason":"compiler-message","package_id":"path+file:///tmp/app#0.1.0","manifest_path":"/tmp/app/Cargo.toml","target":{"kind":["bin"],"crate_types":["bin"],"name":"app","src_path":"/tmp/app/src/main.rs","edition":"2021","doc":true,"doctest":false,"test":true},"message":{"rendered":"warning: unused variable: `y`\n","$message_type":"diagnostic","children":[],"code":{"code":"unused_variables","explanation":null},"level":"warning","message":"unused variable: `y`","spans":[{"byte_end":20,"byte_start":19,"column_end":10,"column_start":9,"expansion":null,"file_name":"src/main.rs","is_primary":true,"label":null,"line_end":2,"line_start":2,"suggested_replacement":null,"suggestion_applicability":null,"text":[]}]}}
{"reason":"compiler-message","package_id":"path+file:///tmp/app#0.1.0","manifest_path":"/tmp/app/Cargo.toml","target":{"kind":["bin"],"crate_types":["bin"],"name":"app","src_path":"/tmp/app/src/main.rs","edition":"2021","doc":true,"doctest":false,"test":true},"message":{"rendered":"error[E0425]: cannot find value `x` in this scope\n","$message_type":"diagnostic","children":[],"code":{"code":"E0425","explanation":"..."},"level":"error","message":"cannot find value `x` in this scope","spans":[{"byte_end":40,"byte_start":39,"column_end":6,"column_start":5,"expansion":null,"file_name":"src/main.rs","is_primary":true,"label":null,"line_end":3,"line_start":3,"suggested_replacement":null,"suggestion_applicability":null,"text":[]}]}}
{"reason":"compiler-message","package_id":"path+file:///tmp/app#0.1.0","manifest_path":"/tmp/app/Cargo.toml","target":{"kind":["bin"],"crate_types":["bin"],"name":"app","src_path":"/tmp/app/src/main.rs","edition":"2021","doc":true,"doctest":false,"test":true},"message":{"rendered":"error: aborting due to 1 previous error\n","$message_type":"diagnostic","children":[],"code":null,"level":"error","message":"aborting due to 1 previous error","spans":[]}}
not json
{"reason":"build-finished","success":false}
"#;

    #[test]
    fn messages_give_errors_and_warnings_without_the_summary() {
        let messages = read_messages(MESSAGES.as_bytes()).expect("parsed");
        assert_eq!(messages.errors.len(), 1);
        assert_eq!(
            messages.errors[0].message,
            "cannot find value `x` in this scope"
        );
        assert_eq!(messages.warnings.len(), 1);
        assert!(messages.executables.is_empty());
    }

    #[test]
    fn the_binary_is_the_only_one_or_the_one_named() {
        let built = |names: &[&str]| {
            names
                .iter()
                .map(|name| {
                    let executable = Executable {
                        path: PathBuf::from(name),
                        manifest_dir: PathBuf::new(),
                        fresh: false,
                    };
                    ((*name).to_owned(), executable)
                })
                .collect::<Vec<_>>()
        };
        assert!(
            matches!(choose(built(&["a"]), None), Outcome::Built(exe) if exe.path == Path::new("a"))
        );
        assert!(
            matches!(choose(built(&["a", "b"]), Some("b")), Outcome::Built(exe) if exe.path == Path::new("b"))
        );
        let Outcome::Failed(Failure::Target(why)) = choose(built(&["a", "b"]), None) else {
            panic!("two binaries and no --bin");
        };
        assert!(why.contains("(a, b)") && why.contains("--bin"), "{why}");
        assert!(matches!(
            choose(built(&[]), None),
            Outcome::Failed(Failure::Target(_))
        ));
    }

    #[test]
    fn manifest_path_in_either_form() {
        let args = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            manifest_path(&args(&["--release", "--manifest-path", "a/Cargo.toml"])),
            Some(Path::new("a/Cargo.toml"))
        );
        assert_eq!(
            manifest_path(&args(&["--manifest-path=b/Cargo.toml"])),
            Some(Path::new("b/Cargo.toml"))
        );
        assert_eq!(manifest_path(&args(&["--release"])), None);
    }
}
