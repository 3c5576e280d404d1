//! The benchmark harness: `cargo bench --bench harness [-- SCENARIO… [OPTION…]]`
//! (`-- --help` lists the scenarios and options).
//!
//! Builds the demo binary (debug and release) and the baseline example
//! (`examples/baseline.rs`, debug and release), runs each scenario against each,
//! prints a table and writes it, with the machine, date and command, to a dated
//! section of BENCHMARKS.md (a run with the same date and scenarios replaces its
//! section). These are measurements, not tests: nothing here fails on a missed
//! goal; a scenario that fails is noted in the section, and the others go on.

#![allow(clippy::print_stdout)]

#[path = "harness/client.rs"]
mod client;
#[path = "harness/edit.rs"]
mod edit;
#[path = "harness/page.rs"]
mod page;
#[path = "harness/report.rs"]
mod report;
#[path = "harness/scenarios.rs"]
mod scenarios;
#[path = "harness/server.rs"]
mod server;

use std::fmt::Write as _;
use std::fs;
use std::future::Future;
use std::io;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use clap::{Parser, ValueEnum};
use futures_util::FutureExt;

use report::Report;
use server::{Target, Workspace};

/// What the harness measures; all by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub(crate) enum Scenario {
    /// The binary restarted `--restarts` times on one passed socket (SIGINT, wait
    /// for the exit, spawn the next at once, as watchexec does) while `--clients`
    /// clients send `GET /`, each on a fresh connection: failed requests, worst
    /// latency.
    Restarts,
    /// N reload streams open, SIGINT: time to exit; every stream got `restart`.
    Shutdown,
    /// N reload streams open, SIGUSR1: time until the last one has `reload`.
    Fanout,
    /// Server RSS with N open streams minus idle RSS, per stream; and per silent
    /// and per idle keep-alive connection.
    Memory,
    /// Requests per second (wrk, 64 keep-alive connections) for a 20 KiB HTML page
    /// with the script injected and without.
    Inject,
    /// `cargo bench --bench inject` (criterion): the rewriter's throughput.
    Injector,
    /// Real watchexec and headless Chromium, `--tabs` tabs, edits of the title:
    /// time until every tab shows it, under `cargo run` and through the runner
    /// (alternated), next to `cargo build` alone.
    Edit,
    /// Every scenario.
    All,
}

/// Scenarios that share one server session per target and stream count.
const STREAM_SCENARIOS: [Scenario; 3] = [Scenario::Shutdown, Scenario::Fanout, Scenario::Memory];

/// A count within `MIN..=MAX`.
fn count<const MIN: usize, const MAX: usize>(text: &str) -> Result<usize, String> {
    let n: usize = text.parse().map_err(|err| format!("{err}"))?;
    (MIN..=MAX)
        .contains(&n)
        .then_some(n)
        .ok_or_else(|| format!("not within {MIN}..={MAX}"))
}

/// `cargo bench --bench harness -- [SCENARIO…] [OPTION…]`
#[derive(Debug, Parser)]
#[command(about = "The axum-autoreload benchmarks, recorded in BENCHMARKS.md")]
pub(crate) struct Options {
    #[arg(value_enum)]
    scenarios: Vec<Scenario>,
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "debug,release,baseline,baseline-release"
    )]
    targets: Vec<Target>,
    /// Open streams of shutdown, fanout and memory.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000", value_parser = count::<1, 50_000>)]
    streams: Vec<usize>,
    #[arg(long, default_value_t = 100, value_parser = count::<0, 10_000>)]
    pub(crate) restarts: usize,
    #[arg(long, default_value_t = 4, value_parser = count::<1, 256>)]
    pub(crate) clients: usize,
    /// How long each server serves before its restart.
    #[arg(long, default_value_t = 20)]
    dwell_ms: u64,
    #[arg(long, default_value_t = 5, value_parser = count::<1, 120>)]
    pub(crate) wrk_seconds: usize,
    /// wrk runs of each server, interleaved.
    #[arg(long, default_value_t = 3, value_parser = count::<1, 20>)]
    pub(crate) rounds: usize,
    /// Edits under each way of running the demo.
    #[arg(long, default_value_t = 3, value_parser = count::<1, 20>)]
    edits: usize,
    #[arg(long, default_value_t = 10, value_parser = count::<1, 30>)]
    tabs: usize,
    /// Reload broadcasts that the fan-out figure takes the median of.
    #[arg(long, default_value_t = 5, value_parser = count::<1, 100>)]
    pub(crate) fanout_rounds: usize,
    /// Restarts: give the demo a static directory that does not exist, so it runs
    /// no file watcher.
    #[arg(long)]
    pub(crate) no_static_watch: bool,
    /// Print only, record nothing in BENCHMARKS.md.
    #[arg(long)]
    no_record: bool,
    /// Use the binaries copied by the last run.
    #[arg(long)]
    no_build: bool,
    /// Passed by `cargo bench` to every bench binary; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

impl Options {
    pub(crate) fn wants(&self, scenario: Scenario) -> bool {
        self.scenarios.contains(&scenario)
    }

    pub(crate) fn dwell(&self) -> Duration {
        Duration::from_millis(self.dwell_ms)
    }

    fn target_names(&self) -> Vec<&'static str> {
        self.targets.iter().map(|t| t.name()).collect()
    }
}

fn main() -> std::process::ExitCode {
    let mut options = Options::parse();
    if options.scenarios.is_empty() || options.wants(Scenario::All) {
        options.scenarios = Scenario::value_variants().to_vec();
    }
    options.scenarios.retain(|s| *s != Scenario::All);
    options.scenarios.sort();
    options.scenarios.dedup();
    match run(&options) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs `scenario` and gives its error or panic as text.
async fn caught(scenario: impl Future<Output = io::Result<()>>) -> Result<(), String> {
    match std::panic::AssertUnwindSafe(scenario).catch_unwind().await {
        Ok(outcome) => outcome.map_err(|err| err.to_string()),
        Err(panic) => Err(panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panicked".into())),
    }
}

fn run(options: &Options) -> io::Result<()> {
    // The workspace root: the library, the demo and the runner, and BENCHMARKS.md.
    let root = dev_support::scratch::workspace();
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), Into::into);
    let bench_dir = target_dir.join("bench");
    let work = Workspace {
        dir: bench_dir.join("work"),
        bin_dir: bench_dir.join("bin"),
        static_dir: bench_dir.join("work/static"),
        page: bench_dir.join("work/static/page.html"),
    };
    fs::create_dir_all(&work.bin_dir)?;
    let page_len = server::write_page(&work.page)?;
    let files = raise_file_limit();

    let started_at = SystemTime::now();
    let needs_servers = options
        .scenarios
        .iter()
        .any(|s| !matches!(s, Scenario::Injector | Scenario::Edit));
    if !options.no_build && needs_servers {
        build(&root, &target_dir, &work.bin_dir, &options.targets)?;
    }
    let source = source_state(&root);
    let load = load_average();
    println!(
        "axum-autoreload benchmarks: scenarios {:?}, targets {:?}; open-file limit {files}; load {load}",
        options.scenarios,
        options.target_names()
    );

    let mut report = Report::default();
    let mut loads = vec![format!("start {load}")];
    let run_cpu = CpuSample::now();
    let mut others: Vec<(String, f64)> = Vec::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let first_stream_scenario = options
        .scenarios
        .iter()
        .find(|s| STREAM_SCENARIOS.contains(s));
    for scenario in &options.scenarios {
        // shutdown, fanout and memory share one server session per target and N.
        if STREAM_SCENARIOS.contains(scenario) && Some(scenario) != first_stream_scenario {
            continue;
        }
        let name = format!("{scenario:?}").to_lowercase();
        let load = load_average();
        println!("== {name} (load {load})");
        loads.push(format!("{name} {load}"));
        let scenario_cpu = CpuSample::now();
        runtime.block_on(async {
            match scenario {
                Scenario::Restarts => {
                    for &target in &options.targets {
                        let outcome =
                            caught(scenarios::restarts(target, &work, options, &mut report)).await;
                        report.failed(&format!("restarts ({})", target.name()), outcome);
                    }
                }
                Scenario::Shutdown | Scenario::Fanout | Scenario::Memory => {
                    let largest = options.streams.iter().copied().max();
                    if let Some(n) = largest.filter(|_| options.wants(Scenario::Memory)) {
                        for &target in &options.targets {
                            let outcome =
                                caught(scenarios::memory_breakdown(target, &work, n, &mut report))
                                    .await;
                            report.failed(&format!("memory ({}, {n})", target.name()), outcome);
                        }
                    }
                    for &n in &options.streams {
                        for &target in &options.targets {
                            let outcome =
                                caught(scenarios::streams(target, &work, n, options, &mut report))
                                    .await;
                            report.failed(&format!("streams ({}, {n})", target.name()), outcome);
                        }
                    }
                }
                Scenario::Inject => {
                    for &target in &options.targets {
                        let cost =
                            scenarios::inject_cost(target, &work, page_len, options, &mut report);
                        let outcome = caught(cost).await;
                        report.failed(&format!("inject ({})", target.name()), outcome);
                    }
                }
                Scenario::Injector => {
                    let criterion = bench_dir.join("criterion");
                    let outcome =
                        caught(async { scenarios::injector(&root, &criterion, &mut report) }).await;
                    report.failed("injector", outcome);
                }
                Scenario::Edit => {
                    let outcome = caught(edit::edit_to_page(
                        &target_dir,
                        options.edits,
                        options.tabs,
                        &mut report,
                    ))
                    .await;
                    report.failed("edit", outcome);
                }
                Scenario::All => {}
            }
        });
        let other = scenario_cpu.others_share();
        println!(
            "  (other processes used {:.0}% of the machine)",
            other * 100.0
        );
        others.push((name, other));
    }
    others.push(("whole run".to_owned(), run_cpu.others_share()));
    runtime.shutdown_timeout(Duration::from_secs(5));
    loads.push(format!("end {}", load_average()));

    let table = report.markdown(&options.target_names());
    println!("\n{table}");
    for note in &report.notes {
        println!("- {note}");
    }
    let misses = report.misses();
    match misses.is_empty() {
        true => println!("\nevery goal met by the demo (debug and release)"),
        false => println!("\ngoals missed:\n- {}", misses.join("\n- ")),
    }
    println!("took {:.0} s", started.elapsed().as_secs_f64());

    if !options.no_record {
        let run = Run {
            started_at,
            table,
            loads,
            others,
            source,
            files,
        };
        record(
            &root.join("BENCHMARKS.md"),
            &section(options, &run, &report),
        )?;
        println!("recorded in BENCHMARKS.md");
    }
    Ok(())
}

/// Builds the binaries and copies them to `bin_dir` under their target names.
fn build(root: &Path, target_dir: &Path, bin_dir: &Path, targets: &[Target]) -> io::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for &target in targets {
        let (args, built) = target.build(target_dir);
        println!("building {}: cargo build {}", target.name(), args.join(" "));
        let status = Command::new(&cargo)
            .arg("build")
            .args(args)
            .current_dir(root)
            .status()?;
        if !status.success() {
            return Err(io::Error::other(format!(
                "cargo build {}: {status}",
                args.join(" ")
            )));
        }
        let staged = bin_dir.join(format!("{}.new", target.name()));
        fs::copy(&built, &staged)?;
        fs::rename(&staged, bin_dir.join(target.name()))?;
    }
    Ok(())
}

/// Raises the soft limit on open files to the hard limit (10,000 streams need
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

/// The numbers after the first `skip` fields of a `/proc` line.
fn numbers(line: &str, skip: usize) -> Vec<u64> {
    line.split_whitespace()
        .skip(skip)
        .filter_map(|f| f.parse().ok())
        .collect()
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
        let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
        // user nice system: time charged to processes. Interrupts and softirqs
        // (where loopback TCP is processed) are charged to no process, so they are
        // left out on both sides.
        let busy = numbers(stat.lines().next().unwrap_or_default(), 1)
            .iter()
            .take(3)
            .sum();
        // utime stime cutime cstime: fields 14–17 of stat, 11–14 after comm (whose
        // text may hold spaces and parentheses). Fields are counted as they come:
        // some before them may be -1.
        let own = fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let after_comm = own.rsplit_once(')').map_or("", |(_, after)| after);
        let own = after_comm
            .split_whitespace()
            .skip(11)
            .take(4)
            .filter_map(|f| f.parse::<u64>().ok())
            .sum();
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
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        // 100 clock ticks per second.
        let capacity = self.at.elapsed().as_secs_f64() * 100.0 * cores;
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
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The standard output of a command, trimmed, if it succeeded.
fn output(program: &str, args: &[&str], dir: &Path) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The commit and whether the sources measured differ from it.
fn source_state(root: &Path) -> String {
    // BENCH_SOURCES: say what was measured when it is not this checkout's state
    // (a copy of a commit, say).
    if let Ok(described) = std::env::var("BENCH_SOURCES") {
        return described;
    }
    let commit =
        output("git", &["rev-parse", "--short", "HEAD"], root).unwrap_or_else(|| "unknown".into());
    let sources = [
        "status",
        "--porcelain",
        "--",
        "src",
        "demo",
        "Cargo.toml",
        "Cargo.lock",
    ];
    let dirty = output("git", &sources, root).unwrap_or_default();
    if dirty.is_empty() {
        return format!("commit {commit}");
    }
    let files: Vec<&str> = dirty.lines().map(|l| l.get(3..).unwrap_or(l)).collect();
    format!(
        "commit {commit} plus uncommitted changes to {}",
        files.join(", ")
    )
}

/// The machine: CPU, cores, memory, kernel, rustc, wrk.
fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .map(|l| numbers(l, 0));
    let memory = kib.and_then(|kib| {
        Some(format!(
            ", {:.0} GiB",
            *kib.first()? as f64 / 1024.0 / 1024.0
        ))
    });
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let rustc = output(
        &std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()),
        &["-V"],
        Path::new("."),
    );
    let wrk = output("wrk", &["--version"], Path::new("."));
    format!(
        "{}, {cores} cores{}; Linux {}; {}; wrk {}",
        cpu.unwrap_or("unknown CPU"),
        memory.unwrap_or_default(),
        kernel.trim(),
        rustc.unwrap_or_default(),
        wrk.as_deref()
            .and_then(|v| v.split_whitespace().nth(1))
            .unwrap_or("not installed"),
    )
}

/// What a run saw besides its figures.
struct Run {
    started_at: SystemTime,
    table: String,
    loads: Vec<String>,
    others: Vec<(String, f64)>,
    source: String,
    files: u64,
}

/// The section of BENCHMARKS.md for this run.
fn section(options: &Options, run: &Run, report: &Report) -> String {
    // `2026-11-30T10:19:00Z` → `2026-11-30 10:19 UTC`.
    let stamp = humantime::format_rfc3339_seconds(run.started_at).to_string();
    let date = format!("{} {} UTC", &stamp[..10], &stamp[11..16]);
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut command = String::from("cargo bench --bench harness");
    if !args.is_empty() {
        let _ = write!(command, " -- {}", args.join(" "));
    }
    let scenarios: Vec<String> = options
        .scenarios
        .iter()
        .map(|s| format!("{s:?}").to_lowercase())
        .collect();
    let shares: Vec<String> = run
        .others
        .iter()
        .map(|(what, share)| format!("{what} {:.0}%", share * 100.0))
        .collect();
    let mut out = format!(
        "## {} — {}\n\n- date: {date}\n- command: `{command}`\n- machine: {}\n- sources: {}\n\
         - open-file limit: {}\n- load average (1, 5, 15 min) as the run went: {}\n\
         - CPU time used by processes other than the harness and what it ran, as a share of the \
         machine (approximate: on a quiet machine it reads 5–10%, kernel time spent on the \
         benchmark's own connections; in `edit` it counts Chromium): {}\n",
        &date[..10],
        scenarios.join(", "),
        machine(),
        run.source,
        run.files,
        run.loads.join("; "),
        shares.join(", "),
    );
    let shared = run
        .others
        .iter()
        .any(|(what, share)| what != "edit" && what != "whole run" && *share >= 0.25);
    if shared {
        out.push_str(
            "- **the machine was shared**: other work (builds, tests) took a quarter of the CPU or \
             more during some scenarios, so their timings are pessimistic\n",
        );
    }
    out.push('\n');
    out.push_str(&run.table);
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

/// Replaces the section with the same heading in `path`, or appends it.
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
    fs::write(path, parts.concat().trim_end().to_owned() + "\n")
}
