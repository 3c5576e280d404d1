//! Temporary directories, scratch copies of the workspace for tests and
//! benchmarks that edit sources and rebuild, and a copy served by watchexec.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::chromium::{Browser, Options};
use crate::http::{first_answer, Response};
use crate::process::Proc;
use crate::socket::free_port;
use crate::tools::{find, CHROMEDRIVER, CHROMIUM, WATCHEXEC};

/// The workspace root: the library, with the demo, the runner and this crate
/// beside it.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the support crate sits in the workspace")
        .to_owned()
}

/// Cargo's target directory: `CARGO_TARGET_DIR`, or the workspace's `target/`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace().join("target"), PathBuf::from)
}

/// Copies the workspace into `to`: everything `cargo build` needs (every member's
/// manifest and sources, the lock file, `static/`), without build output
/// (`target/`), git's `.git/` or the demo's database (`data/`).
pub fn copy_workspace(to: &Path) {
    copy_dir(&workspace(), to);
}

/// Copies the directory tree at `from` into `to`, leaving out directories named
/// `target`, `.git` and `data`.
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|err| panic!("creating {}: {err}", to.display()));
    let entries =
        fs::read_dir(from).unwrap_or_else(|err| panic!("reading {}: {err}", from.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|err| panic!("reading {}: {err}", from.display()));
        let (from, to) = (entry.path(), to.join(entry.file_name()));
        if from.is_dir() {
            if !matches!(entry.file_name().to_str(), Some("target" | ".git" | "data")) {
                copy_dir(&from, &to);
            }
        } else if let Err(err) = fs::copy(&from, &to) {
            panic!("copying {} to {}: {err}", from.display(), to.display());
        }
    }
}

/// Replaces the one occurrence of `old` in the file at `path` with `new`, as an
/// editor's atomic save does (written beside, then renamed in: a watcher never
/// sees half a file); panics when `old` is not there exactly once.
pub fn edit(path: &Path, old: &str, new: &str) {
    let text =
        fs::read_to_string(path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
    let found = text.matches(old).count();
    assert_eq!(found, 1, "{old:?} once in {}", path.display());
    let dir = path.parent().expect("a file in a directory");
    let mut staged = tempfile::NamedTempFile::new_in(dir).expect("a file beside the edited one");
    staged
        .write_all(text.replacen(old, new, 1).as_bytes())
        .and_then(|()| staged.persist(path).map(drop).map_err(|err| err.error))
        .unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
}

/// How watchexec tells the program of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// `--restart --stop-signal SIGINT`: a new process per change.
    Restart,
    /// `--signal SIGHUP --stop-signal SIGINT`: one process, a SIGHUP per change
    /// (the runner's supervisor mode, the README's run line).
    Signal,
}

/// A scratch copy of the workspace served on a free port by `watchexec --socket`,
/// which holds the socket and restarts or signals the program ([`Watch`]) on every
/// change under `src/` or `demo/src/`. Builds go to `e2e/` in [`target_dir`], kept between runs so
/// that only the first compiles the dependencies.
#[derive(Debug)]
pub struct WatchedCopy {
    /// The copy of the workspace.
    pub root: PathBuf,
    /// `http://127.0.0.1:{port}/`.
    pub url: String,
    /// The first answer to `GET /`, a 200.
    pub first_page: Response,
    pub watchexec: Proc,
    _dir: tempfile::TempDir,
}

impl WatchedCopy {
    /// Finds chromium, chromedriver and watchexec (or panics, see [`find`]; a
    /// test that calls it carries `#[cfg_attr(any(missing_chromium,
    /// missing_watchexec), ignore = "...")]`). Then copies the workspace, runs `watchexec` on it with the program and
    /// arguments that `program` gives for the copy (it may build something first),
    /// waits for the first page (at most 15 minutes: in CI the first build compiles
    /// every dependency; panics if watchexec exits or the build fails first), and
    /// opens a [`Browser`] with `options`.
    pub async fn with_browser(
        options: Options,
        watch: Watch,
        program: impl FnOnce(&Path) -> Vec<OsString>,
    ) -> (Self, Browser) {
        let [chromium, chromedriver, watchexec] = find([CHROMIUM, CHROMEDRIVER, WATCHEXEC]);
        let dir = crate::temp::temp_dir("axum-autoreload-e2e-");
        let root = dir.path().join("app");
        copy_workspace(&root);
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mode = match watch {
            Watch::Restart => "--restart",
            Watch::Signal => "--signal SIGHUP",
        };
        let args = format!("--socket {addr} {mode} --stop-signal SIGINT -w src -w demo/src --");
        let mut command = Command::new(&watchexec);
        command
            .args(args.split(' '))
            .args(program(&root))
            .current_dir(&root)
            .env("CARGO_TARGET_DIR", Self::target_dir())
            .env("RUST_LOG", "info");
        let mut watchexec =
            Proc::spawn("watchexec", command).stop_with(Signal::SIGTERM, Duration::from_secs(10));
        let started = Instant::now();
        let first_build = Duration::from_secs(15 * 60);
        let first_page = first_answer(addr, "/", first_build, || {
            check(&mut watchexec, watch, "the first page");
        })
        .await;
        assert_eq!(first_page.status, 200, "GET /: {}", first_page.text());
        let took = started.elapsed().as_millis();
        eprintln!("first page after {took} ms (includes building the copy)");
        let browser = Browser::start(&chromium, &chromedriver, options).await;
        let copy = Self {
            root,
            url: format!("http://{addr}/"),
            first_page,
            watchexec,
            _dir: dir,
        };
        (copy, browser)
    }

    /// Where the copy's builds go.
    pub fn target_dir() -> PathBuf {
        target_dir().join("e2e")
    }
}

/// Panics if `watchexec` has exited, cargo failed to build or run the copy (a
/// line of its log starts with `error`: `error: could not compile`, `error[E0425]:
/// …`), or, under [`Watch::Signal`], the program watchexec runs exited.
pub fn check(watchexec: &mut Proc, watch: Watch, waiting_for: &str) {
    if let Some(status) = watchexec.exited() {
        panic!("watchexec exited ({status}) while waiting for {waiting_for}");
    }
    let log = watchexec.log_text();
    assert!(
        !log.lines().any(|line| line.starts_with("error")),
        "cargo failed to build or run the copy while waiting for {waiting_for}"
    );
    // watchexec's own line when the program ends: under `--signal` nothing
    // restarts it before the next change.
    assert!(
        watch == Watch::Restart || !log.contains("[Command exited with"),
        "the program exited while waiting for {waiting_for}"
    );
}
