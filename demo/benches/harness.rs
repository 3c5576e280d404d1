//! The benchmark harness: `cargo bench --bench harness [-- SCENARIO… [OPTION…]]`.
//!
//! Builds the demo binary (debug and release) and the baseline example
//! (`examples/baseline.rs`, debug and release), runs each scenario against each,
//! prints a table and writes it, with the machine, date and command, to a dated
//! section of BENCHMARKS.md (a run with the same date and scenarios replaces its
//! section). These are measurements, not tests: nothing here fails on a missed
//! goal.
//!
//! Scenarios (all by default):
//!
//! - `restarts`: the binary restarted 100 times on one passed socket (SIGINT, wait
//!   for the exit, spawn the next at once, as watchexec does) while 4 clients send
//!   `GET /`, each on a fresh connection: failed requests, worst latency.
//! - `shutdown`: N reload streams open, SIGINT: time to exit; every stream got
//!   `restart`.
//! - `fanout`: N reload streams open, SIGUSR1: time until the last one has `reload`.
//! - `memory`: server RSS with N open streams minus idle RSS, per stream.
//! - `inject`: requests per second (wrk, 64 keep-alive connections) for a 20 KiB
//!   HTML page with the script injected and without.
//! - `injector`: `cargo bench --bench inject` (criterion), the rewriter's throughput.
//! - `edit`: real watchexec and headless Chromium, 10 tabs, an edit of the title:
//!   time until every tab shows it, next to `cargo build` alone.
//!
//! Options: `--targets debug,release,baseline,baseline-release`, `--streams
//! 1000,10000`, `--restarts 100`, `--clients 4`, `--dwell-ms 20`, `--wrk-seconds 5`,
//! `--rounds 3`, `--edits 3`, `--tabs 10`, `--fanout-rounds 5`, `--no-static-watch`
//! (restarts: give the demo a static directory that does not exist, so it runs no
//! file watcher), `--no-record` (print only), `--no-build` (use the binaries copied
//! by the last run).

#![allow(clippy::print_stdout)]

#[path = "harness/client.rs"]
mod client;
#[path = "harness/edit.rs"]
mod edit;
#[path = "harness/page.rs"]
mod page;
#[path = "../tests/common/procs.rs"]
mod procs;
#[path = "harness/report.rs"]
mod report;
#[path = "harness/scenarios.rs"]
mod scenarios;
#[path = "harness/server.rs"]
mod server;
#[path = "../tests/common/wire.rs"]
mod wire;

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use report::Report;
use scenarios::StreamFigures;
use server::{Target, Workspace, TARGET_NAMES};

const SCENARIOS: [&str; 7] = [
    "restarts", "shutdown", "fanout", "memory", "inject", "injector", "edit",
];

/// What to run.
#[derive(Debug)]
struct Options {
    scenarios: Vec<&'static str>,
    targets: Vec<&'static str>,
    streams: Vec<usize>,
    restarts: usize,
    clients: usize,
    dwell: Duration,
    wrk_seconds: u64,
    rounds: usize,
    edits: usize,
    tabs: usize,
    fanout_rounds: usize,
    static_watch: bool,
    record: bool,
    build: bool,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        scenarios: Vec::new(),
        targets: TARGET_NAMES.to_vec(),
        streams: vec![1_000, 10_000],
        restarts: 100,
        clients: 4,
        dwell: Duration::from_millis(20),
        wrk_seconds: 5,
        rounds: 3,
        edits: 3,
        tabs: 10,
        fanout_rounds: 5,
        static_watch: true,
        record: true,
        build: true,
    };
    let mut args = std::env::args().skip(1);
    let number = |value: Option<String>, name: &str| -> Result<u64, String> {
        value
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a number"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            // cargo bench passes --bench to harness = false targets.
            "--bench" => {}
            "--targets" => {
                let list = args.next().ok_or("--targets needs a list")?;
                options.targets = list
                    .split(',')
                    .map(|name| {
                        TARGET_NAMES
                            .into_iter()
                            .find(|t| *t == name)
                            .ok_or_else(|| format!("unknown target {name:?}: {TARGET_NAMES:?}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--streams" => {
                let list = args.next().ok_or("--streams needs a list")?;
                options.streams = list
                    .split(',')
                    .map(|n| {
                        n.parse()
                            .map_err(|_| format!("--streams: bad number {n:?}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--restarts" => options.restarts = number(args.next(), "--restarts")? as usize,
            "--clients" => options.clients = number(args.next(), "--clients")? as usize,
            "--dwell-ms" => {
                options.dwell = Duration::from_millis(number(args.next(), "--dwell-ms")?)
            }
            "--wrk-seconds" => options.wrk_seconds = number(args.next(), "--wrk-seconds")?,
            "--rounds" => options.rounds = number(args.next(), "--rounds")? as usize,
            "--edits" => options.edits = number(args.next(), "--edits")? as usize,
            "--tabs" => options.tabs = number(args.next(), "--tabs")? as usize,
            "--fanout-rounds" => {
                options.fanout_rounds = number(args.next(), "--fanout-rounds")? as usize;
            }
            "--no-static-watch" => options.static_watch = false,
            "--no-record" => options.record = false,
            "--no-build" => options.build = false,
            "all" => options.scenarios.extend(SCENARIOS),
            name => match SCENARIOS.into_iter().find(|s| *s == name) {
                Some(scenario) => options.scenarios.push(scenario),
                None => {
                    return Err(format!(
                        "unknown scenario or option {name:?}; scenarios: {SCENARIOS:?}"
                    ))
                }
            },
        }
    }
    if options.scenarios.is_empty() {
        options.scenarios = SCENARIOS.to_vec();
    }
    options
        .scenarios
        .sort_by_key(|s| SCENARIOS.iter().position(|x| x == s));
    options.scenarios.dedup();
    options.streams.retain(|&n| n > 0 && n <= 50_000);
    options.restarts = options.restarts.min(10_000);
    options.clients = options.clients.clamp(1, 256);
    options.rounds = options.rounds.clamp(1, 20);
    options.wrk_seconds = options.wrk_seconds.clamp(1, 120);
    options.edits = options.edits.clamp(1, 20);
    options.tabs = options.tabs.clamp(1, 30);
    options.fanout_rounds = options.fanout_rounds.clamp(1, 100);
    Ok(options)
}

fn main() -> std::process::ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(err) => {
            eprintln!("error: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(options: &Options) -> io::Result<()> {
    // The workspace root: the library, the demo and the runner, and BENCHMARKS.md.
    let manifest_dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("target"));
    let bench_dir = target_dir.join("bench");
    let bin_dir = bench_dir.join("bin");
    let work = Workspace {
        dir: bench_dir.join("work"),
        static_dir: bench_dir.join("work/static"),
        logs: bench_dir.join("logs"),
    };
    fs::create_dir_all(&bin_dir)?;
    fs::create_dir_all(&work.logs)?;
    let page_len = server::write_page(&work.static_dir)?;
    let files = raise_file_limit();

    let started_at = SystemTime::now();
    let load_before = load_average();
    let needs_servers = options
        .scenarios
        .iter()
        .any(|s| !matches!(*s, "injector" | "edit"));
    if options.build && needs_servers {
        build(&manifest_dir, &target_dir, &bin_dir, &options.targets)?;
    }
    let targets: Vec<Target> = options
        .targets
        .iter()
        .map(|name| Target::new(name, &bin_dir))
        .collect();
    let source = source_state(&manifest_dir);
    println!(
        "axum-autoreload benchmarks: scenarios {:?}, targets {:?}; open-file limit {files}; load {load_before}",
        options.scenarios, options.targets
    );

    let mut report = Report::default();
    let mut loads = vec![format!("start {load_before}")];
    let run_cpu = CpuSample::now();
    let mut others: Vec<(String, f64)> = Vec::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let want = StreamFigures {
        memory: options.scenarios.contains(&"memory"),
        fanout: options.scenarios.contains(&"fanout"),
        shutdown: options.scenarios.contains(&"shutdown"),
        fanout_rounds: options.fanout_rounds,
    };
    for &scenario in &options.scenarios {
        // shutdown, fanout and memory share one server session per target and N.
        let streams = matches!(scenario, "shutdown" | "fanout" | "memory");
        if streams && !is_first_stream_scenario(options, scenario) {
            continue;
        }
        let load = load_average();
        println!("== {scenario} (load {load})");
        loads.push(format!("{scenario} {load}"));
        let scenario_cpu = CpuSample::now();
        let outcome = runtime.block_on(async {
            match scenario {
                "restarts" => {
                    for target in &targets {
                        if let Err(err) = scenarios::restarts(
                            target,
                            &work,
                            options.restarts,
                            options.clients,
                            options.dwell,
                            options.static_watch,
                            &mut report,
                        )
                        .await
                        {
                            println!("  restarts {} failed: {err}", target.name);
                            report.note(format!("restarts ({}): failed: {err}", target.name));
                        }
                    }
                    Ok(())
                }
                "shutdown" | "fanout" | "memory" => {
                    let largest = options.streams.iter().copied().max();
                    if let Some(n) = largest.filter(|_| want.memory) {
                        for target in &targets {
                            let outcome =
                                scenarios::memory_breakdown(target, &work, n, &mut report).await;
                            if let Err(err) = outcome {
                                println!("  memory {} n={n} failed: {err}", target.name);
                                report
                                    .note(format!("memory ({}, {n}): failed: {err}", target.name));
                            }
                        }
                    }
                    for &n in &options.streams {
                        for target in &targets {
                            let outcome =
                                scenarios::streams(target, &work, n, want, &mut report).await;
                            if let Err(err) = outcome {
                                println!("  streams {} n={n} failed: {err}", target.name);
                                report
                                    .note(format!("streams ({}, {n}): failed: {err}", target.name));
                            }
                        }
                    }
                    Ok(())
                }
                "inject" => {
                    for target in &targets {
                        if let Err(err) = scenarios::inject_cost(
                            target,
                            &work,
                            page_len,
                            options.wrk_seconds,
                            options.rounds,
                            &mut report,
                        )
                        .await
                        {
                            println!("  inject {} failed: {err}", target.name);
                            report.note(format!("inject ({}): failed: {err}", target.name));
                        }
                    }
                    Ok(())
                }
                "injector" => {
                    scenarios::injector(&manifest_dir, &bench_dir.join("criterion"), &mut report)
                }
                "edit" => {
                    edit::edit_to_page(
                        &manifest_dir,
                        &target_dir,
                        options.edits,
                        options.tabs,
                        &mut report,
                    )
                    .await
                }
                _ => Ok(()),
            }
        });
        if let Err(err) = outcome {
            println!("  {scenario} failed: {err}");
            report.note(format!("{scenario}: failed: {err}"));
        }
        let other = scenario_cpu.others_share();
        println!(
            "  (other processes used {:.0}% of the machine)",
            other * 100.0
        );
        others.push((scenario.to_owned(), other));
    }
    others.push(("whole run".to_owned(), run_cpu.others_share()));
    runtime.shutdown_timeout(Duration::from_secs(5));
    let load_after = load_average();
    loads.push(format!("end {load_after}"));

    let table = report.markdown(&options.targets);
    println!("\n{table}");
    for note in &report.notes {
        println!("- {note}");
    }
    let misses = report.misses();
    if misses.is_empty() {
        println!("\nevery goal met by the demo (debug and release)");
    } else {
        println!("\ngoals missed:");
        for miss in &misses {
            println!("- {miss}");
        }
    }
    println!("took {:.0} s", started.elapsed().as_secs_f64());

    if options.record {
        let section = section(
            options, started_at, &table, &report, &loads, &others, &source, files,
        );
        record(&manifest_dir.join("BENCHMARKS.md"), &section)?;
        println!("recorded in BENCHMARKS.md");
    }
    Ok(())
}

/// Whether `scenario` is the first of shutdown, fanout and memory asked for: the
/// one after which their shared sessions run.
fn is_first_stream_scenario(options: &Options, scenario: &str) -> bool {
    options
        .scenarios
        .iter()
        .find(|s| matches!(**s, "shutdown" | "fanout" | "memory"))
        .is_some_and(|first| *first == scenario)
}

/// Build the binaries and copy them to `bin_dir` under their target names.
fn build(
    manifest_dir: &Path,
    target_dir: &Path,
    bin_dir: &Path,
    targets: &[&str],
) -> io::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for &target in targets {
        let (args, built): (&[&str], PathBuf) = match target {
            "debug" => (
                &["build", "--bin", "axum-autoreload-demo"],
                target_dir.join("debug/axum-autoreload-demo"),
            ),
            "release" => (
                &["build", "--release", "--bin", "axum-autoreload-demo"],
                target_dir.join("release/axum-autoreload-demo"),
            ),
            "baseline" => (
                &["build", "--example", "baseline"],
                target_dir.join("debug/examples/baseline"),
            ),
            _ => (
                &["build", "--release", "--example", "baseline"],
                target_dir.join("release/examples/baseline"),
            ),
        };
        println!("building {target}: cargo {}", args.join(" "));
        let status = Command::new(&cargo)
            .args(args)
            .current_dir(manifest_dir)
            .status()?;
        if !status.success() {
            return Err(io::Error::other(format!(
                "cargo {}: {status}",
                args.join(" ")
            )));
        }
        let copy = bin_dir.join(target);
        let staged = bin_dir.join(format!("{target}.new"));
        fs::copy(&built, &staged)?;
        fs::rename(&staged, &copy)?;
    }
    Ok(())
}

/// Raise the soft limit on open files to the hard limit (10,000 streams need
/// 10,000 sockets here and 10,000 in the server, which inherits the limit).
fn raise_file_limit() -> u64 {
    let Ok((soft, hard)) = rlimit::Resource::NOFILE.get() else {
        return 0;
    };
    if soft < hard && rlimit::Resource::NOFILE.set(hard, hard).is_ok() {
        return hard;
    }
    soft
}

/// CPU time, for telling how much of it other processes took.
struct CpuSample {
    at: Instant,
    /// Time the whole machine spent running processes, in clock ticks.
    busy: u64,
    /// This process and the children it waited for, in clock ticks.
    own: u64,
}

impl CpuSample {
    fn now() -> Self {
        let busy = fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|stat| {
                let line = stat.lines().next()?.to_owned();
                let fields: Vec<u64> = line
                    .split_whitespace()
                    .skip(1)
                    .filter_map(|f| f.parse().ok())
                    .collect();
                // user nice system: time charged to processes. Interrupts and
                // softirqs (where loopback TCP is processed) are charged to no
                // process, so they are left out on both sides.
                Some(fields.get(..3)?.iter().sum())
            })
            .unwrap_or(0);
        let own = fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|stat| {
                let after_comm = stat.rsplit_once(')')?.1.to_owned();
                let fields: Vec<u64> = after_comm
                    .split_whitespace()
                    .filter_map(|f| f.parse().ok())
                    .collect();
                // utime stime cutime cstime: fields 14–17 of stat, 12–15 after comm.
                Some(fields.get(11..15)?.iter().sum())
            })
            .unwrap_or(0);
        Self {
            at: Instant::now(),
            busy,
            own,
        }
    }

    /// The share of the machine's CPU (0–1) that processes other than this one and
    /// its waited-for children used since the sample. Children killed without a
    /// wait of their own (Chromium's helpers) count as others.
    fn others_share(&self) -> f64 {
        let now = Self::now();
        let ticks_per_s = 100.0;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let capacity = self.at.elapsed().as_secs_f64() * ticks_per_s * cores;
        let others =
            now.busy.saturating_sub(self.busy) as f64 - now.own.saturating_sub(self.own) as f64;
        if capacity > 0.0 {
            (others / capacity).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The commit and whether the sources measured differ from it.
fn source_state(manifest_dir: &Path) -> String {
    // BENCH_SOURCES: say what was measured when it is not this checkout's state
    // (a copy of a commit, say).
    if let Ok(described) = std::env::var("BENCH_SOURCES") {
        return described;
    }
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(manifest_dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&[
        "status",
        "--porcelain",
        "--",
        "src",
        "demo",
        "Cargo.toml",
        "Cargo.lock",
    ])
    .unwrap_or_default();
    if dirty.is_empty() {
        format!("commit {commit}")
    } else {
        let files: Vec<&str> = dirty.lines().map(|l| l.get(3..).unwrap_or(l)).collect();
        format!(
            "commit {commit} plus uncommitted changes to {}",
            files.join(", ")
        )
    }
}

/// The machine: CPU, cores, memory, kernel, rustc.
fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or_else(String::new, |kib| {
            format!(", {:.0} GiB", kib as f64 / 1024.0 / 1024.0)
        });
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let wrk = Command::new("wrk")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.split_whitespace().nth(1).map(str::to_owned)
        })
        .unwrap_or_else(|| "not installed".into());
    format!(
        "{cpu}, {cores} cores{memory}; Linux {}; {rustc}; wrk {wrk}",
        kernel.trim()
    )
}

/// `YYYY-MM-DD HH:MM UTC`.
fn utc(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let (hour, minute) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

/// The section of BENCHMARKS.md for this run.
#[allow(clippy::too_many_arguments)]
fn section(
    options: &Options,
    started_at: SystemTime,
    table: &str,
    report: &Report,
    loads: &[String],
    others: &[(String, f64)],
    source: &str,
    files: u64,
) -> String {
    let date = utc(started_at);
    let mut command = String::from("cargo bench --bench harness");
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if !args.is_empty() {
        let _ = write!(command, " -- {}", args.join(" "));
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## {} — {}\n",
        &date[..10],
        options.scenarios.join(", ")
    );
    let _ = writeln!(out, "- date: {date}");
    let _ = writeln!(out, "- command: `{command}`");
    let _ = writeln!(out, "- machine: {}", machine());
    let _ = writeln!(out, "- sources: {source}");
    let _ = writeln!(out, "- open-file limit: {files}");
    let _ = writeln!(
        out,
        "- load average (1, 5, 15 min) as the run went: {}",
        loads.join("; ")
    );
    let shares: Vec<String> = others
        .iter()
        .map(|(what, share)| format!("{what} {:.0}%", share * 100.0))
        .collect();
    let _ = writeln!(
        out,
        "- CPU time used by processes other than the harness and what it ran, as a \
         share of the machine (approximate: on a quiet machine it reads 5–10%, kernel \
         time spent on the benchmark's own connections; in `edit` it counts Chromium): {}",
        shares.join(", ")
    );
    let shared = others
        .iter()
        .filter(|(what, _)| what != "edit" && what != "whole run")
        .any(|(_, share)| *share >= 0.25);
    if shared {
        let _ = writeln!(
            out,
            "- **the machine was shared**: other work (builds, tests) took a quarter of \
             the CPU or more during some scenarios, so their timings are pessimistic"
        );
    }
    out.push('\n');
    out.push_str(table);
    if !report.notes.is_empty() {
        out.push('\n');
        for note in &report.notes {
            let _ = writeln!(out, "- {note}");
        }
    }
    let misses = report.misses();
    out.push('\n');
    if misses.is_empty() {
        out.push_str("Every goal met by the demo (debug and release).\n");
    } else {
        out.push_str("Goals missed by the demo (the baseline columns are for comparison):\n\n");
        for miss in misses {
            let _ = writeln!(out, "- {miss}");
        }
    }
    out
}

const PREAMBLE: &str = "# Benchmarks

Figures from `cargo bench --bench harness` (see `benches/harness.rs` for what each
scenario does, and README.md's Benchmarks section for how to run it). Each run writes
a dated section below; a run with the same date and scenarios replaces its own.
Columns: `debug` is `target/debug/axum-autoreload` (what `cargo run` gives),
`release` is `cargo build --release` with `AXUM_AUTORELOAD=1`, `baseline` and
`baseline-release` are `examples/baseline.rs` (listenfd, `axum::serve` with graceful
shutdown, a naive reload stream), built the same two ways.

<!-- The harness appends a section per run; a later run with the same heading (date and scenarios) replaces it. Other sections are kept. -->
";

/// Replace the section with the same heading in `path`, or append it.
fn record(path: &Path, section: &str) -> io::Result<()> {
    let existing = fs::read_to_string(path).unwrap_or_else(|_| PREAMBLE.to_owned());
    let heading = section.lines().next().unwrap_or_default();
    let mut parts: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in existing.split_inclusive('\n') {
        if line.starts_with("## ") && !current.is_empty() {
            parts.push(std::mem::take(&mut current));
        }
        current.push_str(line);
    }
    parts.push(current);
    let body = section.trim_end().to_owned() + "\n";
    match parts.iter().position(|p| p.lines().next() == Some(heading)) {
        Some(at) => parts[at] = body + "\n",
        None => {
            let last = parts.len() - 1;
            if !parts[last].ends_with("\n\n") {
                parts[last].push('\n');
            }
            parts.push(body);
        }
    }
    let text = parts.concat();
    fs::write(path, text.trim_end().to_owned() + "\n")
}
