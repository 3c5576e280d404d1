//! A child process in a process group of its own, its output in a log file, and
//! stopped on drop together with every process it started (watchexec → the runner
//! → cargo → the app, which moves to a group of its own).
//!
//! Spawning in a new group is std's `CommandExt::process_group`. Finding the
//! descendants is hand-written over `/proc`: process-wrap and its kind kill one
//! process group, and the app the runner starts has left it.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::{getpgrp, Pid};

/// A running child process, stopped on drop: first `stop` (SIGTERM unless told
/// otherwise) and up to `grace` for it to exit, then SIGKILL to it, to its
/// process group and to every descendant and group found from it. If the thread
/// is panicking, the log's tail is printed first.
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Child,
    log: tempfile::NamedTempFile,
    stop: Signal,
    grace: Duration,
    /// How it exited, once waited for.
    status: Option<ExitStatus>,
}

impl Proc {
    /// Spawns `command` in a new process group with stdin closed and stdout and
    /// stderr written to a log file of its own. `name` names it in messages.
    pub fn spawn(name: &str, mut command: Command) -> Self {
        let log = tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .suffix(".log")
            .tempfile()
            .expect("creating a log file");
        let out = log.reopen().expect("opening the log file");
        let err = out.try_clone().expect("cloning a log file handle");
        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = command
            .spawn()
            .unwrap_or_else(|err| panic!("spawning {name} ({command:?}): {err}"));
        Self {
            name: name.to_owned(),
            child,
            log,
            stop: Signal::SIGTERM,
            grace: Duration::from_secs(2),
            status: None,
        }
    }

    /// Stop it with `signal` (and wait up to `grace` for it) before the SIGKILLs.
    #[must_use]
    pub fn stop_with(mut self, signal: Signal, grace: Duration) -> Self {
        self.stop = signal;
        self.grace = grace;
        self
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).expect("a pid fits in i32"))
    }

    /// Sends `signal` to the process (not its group).
    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal)
            .unwrap_or_else(|err| panic!("sending {signal} to {}: {err}", self.name));
    }

    /// Whether and how the process ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("waiting on a child process");
        }
        self.status
    }

    /// Waits up to `limit` for the process to exit; `None` when it did not.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while self.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.status
    }

    /// The log's text so far: the process's stdout and stderr.
    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&fs::read(self.log.path()).unwrap_or_default()).into_owned()
    }

    /// The log's last `lines` lines, under a heading.
    pub fn tail(&self, lines: usize) -> String {
        let (name, text) = (&self.name, self.log_text());
        let all: Vec<&str> = text.lines().collect();
        let tail = all[all.len().saturating_sub(lines)..].join("\n");
        let head = format!("---- last {lines} lines of the {name} log ----");
        format!("{head}\n{tail}\n---- end of the {name} log ----")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.tail(60));
        }
        let root = self.pid();
        // Waited for already: its descendants are no longer found from its pid, but
        // what it left in its group (cargo under watchexec) is killed with the group:
        // a group id is not reused while a member lives.
        if self.status.is_some() {
            let _ = killpg(root, Signal::SIGKILL);
            return;
        }
        // Taken before anything is signalled: once the root exits its children are
        // reparented and can no longer be found from it.
        let descendants = descendants(root);
        if self.exited().is_none() {
            let _ = kill(root, self.stop);
            let _ = self.wait_exit(self.grace);
        }
        let own_group = getpgrp();
        let mut groups = BTreeSet::from([root]);
        groups.extend(descendants.iter().map(|&(_, group)| group));
        for group in groups {
            if group != own_group && group.as_raw() > 1 {
                let _ = killpg(group, Signal::SIGKILL);
            }
        }
        for (process, _) in descendants {
            let _ = kill(process, Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every living descendant of `root`, with its process group, read from `/proc`.
pub fn descendants(root: Pid) -> Vec<(Pid, Pid)> {
    let mut children: HashMap<i32, Vec<(i32, i32)>> = HashMap::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let process = entry.file_name().to_str().and_then(|s| s.parse().ok());
        let stat = fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        let (Some(process), Some((_, after_comm))) = (process, stat.rsplit_once(')')) else {
            continue;
        };
        let mut fields = after_comm.split_whitespace().skip(1).map(str::parse);
        if let (Some(Ok(parent)), Some(Ok(group))) = (fields.next(), fields.next()) {
            children.entry(parent).or_default().push((process, group));
        }
    }
    let mut found = Vec::new();
    let mut stack = vec![root.as_raw()];
    while let Some(parent) = stack.pop() {
        for &(process, group) in children.get(&parent).into_iter().flatten() {
            found.push((Pid::from_raw(process), Pid::from_raw(group)));
            stack.push(process);
        }
    }
    found
}

/// Whether process `pid` runs: it exists and is no zombie (one that exited and
/// whose parent has not reaped it yet: an orphan waits for the reaper).
pub fn running(pid: u32) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // "pid (comm) state ...": comm may hold spaces and parentheses.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, after)| after.split_whitespace().next());
    state.is_some_and(|state| state != "Z" && state != "X")
}
