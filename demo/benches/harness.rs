//! The benchmark harness: `cargo bench --bench harness [-- SCENARIO… [OPTION…]]`
//! (`-- --help` lists the scenarios and options).
//!
//! Builds the `--targets`, runs each scenario against each, prints a table and
//! writes it, with the machine, date and command, to a dated section of
//! BENCHMARKS.md (a run with the same date and scenarios replaces its section).
//! These are measurements, not tests: nothing here fails on a missed goal; a
//! scenario that fails is noted in the section, and the others go on.

#![allow(clippy::print_stdout)]

#[path = "harness/edit.rs"]
mod edit;
#[path = "harness/page.rs"]
mod page;
#[path = "harness/report.rs"]
mod report;
#[path = "harness/scenarios.rs"]
mod scenarios;
#[path = "harness/supervisor.rs"]
mod supervisor;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use clap::{value_parser, Parser, ValueEnum};
use futures_util::FutureExt;

use report::Report;

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
    /// Issue 18's figures: real watchexec and headless Chromium, `--tabs` tabs,
    /// `--edits` sessions of the runner in restart mode (a new runner per change)
    /// and in signal mode (one runner, SIGHUP per change), alternated: the longest
    /// wait of a request during an edit, save → new app less the build, what a
    /// broken build leaves working, an unchanged binary's restarts and reloads,
    /// SIGKILL of the runner → app gone.
    Supervisor,
    /// Every scenario.
    All,
}

/// Scenarios that share one server session per target and stream count.
const STREAM_SCENARIOS: [Scenario; 3] = [Scenario::Shutdown, Scenario::Fanout, Scenario::Memory];

/// A binary to measure, a column of the tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub(crate) enum Target {
    /// The demo, `cargo build`.
    Debug,
    /// The demo, `cargo build --release`, with `AXUM_AUTORELOAD=1`.
    Release,
    /// `examples/baseline.rs`: listenfd, `axum::serve` with graceful shutdown and a
    /// naive reload stream.
    Baseline,
    /// The baseline, `cargo build --release`.
    BaselineRelease,
}

impl Target {
    pub(crate) fn name(self) -> &'static str {
        ["debug", "release", "baseline", "baseline-release"][self as usize]
    }

    pub(crate) fn is_baseline(self) -> bool {
        matches!(self, Self::Baseline | Self::BaselineRelease)
    }
}

/// `cargo bench --bench harness -- [SCENARIO…] [OPTION…]`
#[derive(Debug, Parser)]
#[command(about = "The axum-autoreload benchmarks, recorded in BENCHMARKS.md")]
pub(crate) struct Options {
    #[arg(value_enum)]
    scenarios: Vec<Scenario>,
    #[arg(long, value_enum, value_delimiter = ',')]
    #[arg(default_value = "debug,release,baseline,baseline-release")]
    targets: Vec<Target>,
    /// Open streams of shutdown, fanout and memory.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    #[arg(value_parser = value_parser!(u16).range(1..=50_000))]
    streams: Vec<u16>,
    #[arg(long, default_value_t = 100, value_parser = value_parser!(u16).range(0..=10_000))]
    pub(crate) restarts: u16,
    #[arg(long, default_value_t = 4, value_parser = value_parser!(u16).range(1..=256))]
    pub(crate) clients: u16,
    /// How long each server serves before its restart.
    #[arg(long, default_value_t = 20)]
    pub(crate) dwell_ms: u64,
    #[arg(long, default_value_t = 5, value_parser = value_parser!(u16).range(1..=120))]
    pub(crate) wrk_seconds: u16,
    /// wrk runs of each server, interleaved.
    #[arg(long, default_value_t = 3, value_parser = value_parser!(u16).range(1..=20))]
    pub(crate) rounds: u16,
    /// Edits under each way of running the demo (`supervisor`: sessions of each way).
    #[arg(long, default_value_t = 3, value_parser = value_parser!(u16).range(1..=20))]
    edits: u16,
    /// Pages open in `edit`, each in a window of its own (all visible).
    #[arg(long, default_value_t = 10, value_parser = value_parser!(u16).range(1..=30))]
    tabs: u16,
    /// Reload broadcasts that the fan-out figure takes the median of.
    #[arg(long, default_value_t = 5, value_parser = value_parser!(u16).range(1..=100))]
    pub(crate) fanout_rounds: u16,
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

/// What every scenario gets: the options, the servers' directory (`target/bench`:
/// see [`scenarios::Server::spawn`]), and the report to add its figures to.
pub(crate) struct Bench {
    options: Options,
    dir: PathBuf,
    report: Report,
}

fn main() -> io::Result<()> {
    let mut options = Options::parse();
    // The scenarios asked for (all if none, or `all`), in their order, once each.
    let asked = std::mem::take(&mut options.scenarios);
    let all = asked.is_empty() || asked.contains(&Scenario::All);
    let variants = Scenario::value_variants().iter().copied();
    let wanted = |s: &Scenario| *s != Scenario::All && (all || asked.contains(s));
    options.scenarios = variants.filter(wanted).collect();
    let root = dev_support::scratch::workspace();
    let target_dir = dev_support::scratch::target_dir();
    let bench_dir = target_dir.join("bench");
    fs::create_dir_all(bench_dir.join("work/static"))?;
    fs::create_dir_all(bench_dir.join("bin"))?;
    let page = bench_dir.join("work/static/page.html");
    fs::write(&page, page::html_page(scenarios::PAGE_SIZE))?;
    fs::File::open(&page)?.sync_all()?;
    // 10,000 streams need 10,000 sockets here and 10,000 in the server, which
    // inherits the limit: the soft limit on open files goes up to the hard one.
    let files = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    let date = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let servers = |s: &Scenario| {
        !matches!(
            s,
            Scenario::Injector | Scenario::Edit | Scenario::Supervisor
        )
    };
    // Each binary is copied to `bin` under its target's name: a private copy, so that
    // a build by someone else in the same checkout cannot swap one mid-run.
    let build = !options.no_build && options.scenarios.iter().any(servers);
    for target in options.targets.iter().filter(|_| build) {
        let release = matches!(target, Target::Release | Target::BaselineRelease);
        let (what, binary) = match target.is_baseline() {
            true => ("--example baseline", "examples/baseline"),
            false => ("--bin axum-autoreload-demo", "axum-autoreload-demo"),
        };
        let args = format!("{}{what}", if release { "--release " } else { "" });
        println!("building {}: cargo build {args}", target.name());
        let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cargo.arg("build").args(args.split(' ')).current_dir(&root);
        let status = cargo.status()?;
        if !status.success() {
            return Err(io::Error::other(format!("cargo build {args}: {status}")));
        }
        let built = target_dir.join(if release { "release" } else { "debug" });
        let staged = bench_dir.join(format!("bin/{}.new", target.name()));
        fs::copy(built.join(binary), &staged)?;
        fs::rename(&staged, bench_dir.join("bin").join(target.name()))?;
    }
    let load = load_average();
    let targets: Vec<&str> = options.targets.iter().map(|t| t.name()).collect();
    let scenarios = options.scenarios.clone();
    println!("scenarios {scenarios:?}, targets {targets:?}; open-file limit {files}; load {load}");

    let mut bench = Bench {
        options,
        dir: bench_dir,
        report: Report::default(),
    };
    let (mut loads, mut others) = (vec![format!("start {load}")], Vec::new());
    let run_cpu = cpu_sample();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    let runtime = runtime.worker_threads(2).enable_all().build()?;
    let first_stream_scenario = scenarios.iter().find(|s| STREAM_SCENARIOS.contains(s));
    // Runs one scenario (of one target): its error or panic becomes a note.
    macro_rules! attempt {
        ($what:expr, $scenario:expr) => {{
            let failure = match std::panic::AssertUnwindSafe($scenario).catch_unwind().await {
                Ok(outcome) => outcome.err().map(|err| err.to_string()),
                Err(panic) => {
                    let text = panic.downcast_ref::<&str>().map(|text| text.to_string());
                    text.or_else(|| panic.downcast_ref::<String>().cloned())
                        .or(Some("panicked".into()))
                }
            };
            if let Some(err) = failure {
                println!("  {} failed: {err}", $what);
                bench.report.notes.push(format!("{}: failed: {err}", $what));
            }
        }};
    }
    for scenario in &scenarios {
        if STREAM_SCENARIOS.contains(scenario) && Some(scenario) != first_stream_scenario {
            continue;
        }
        let (name, load) = (format!("{scenario:?}").to_lowercase(), load_average());
        println!("== {name} (load {load})");
        loads.push(format!("{name} {load}"));
        let scenario_cpu = cpu_sample();
        let (targets, streams) = (bench.options.targets.clone(), bench.options.streams.clone());
        runtime.block_on(async {
            match scenario {
                Scenario::Restarts | Scenario::Inject => {
                    for target in targets {
                        let what = format!("{name} ({})", target.name());
                        if *scenario == Scenario::Restarts {
                            attempt!(what, scenarios::restarts(&mut bench, target));
                        } else {
                            attempt!(what, scenarios::inject_cost(&mut bench, target));
                        }
                    }
                }
                Scenario::Shutdown | Scenario::Fanout | Scenario::Memory => {
                    let largest = streams.iter().copied().max().map(usize::from);
                    let memory = bench.options.scenarios.contains(&Scenario::Memory);
                    if let Some(n) = largest.filter(|_| memory) {
                        for &target in &targets {
                            let what = format!("memory ({}, {n})", target.name());
                            attempt!(what, scenarios::memory(&mut bench, target, n));
                        }
                    }
                    for n in streams.iter().map(|&n| usize::from(n)) {
                        for &target in &targets {
                            let what = format!("streams ({}, {n})", target.name());
                            attempt!(what, scenarios::streams(&mut bench, target, n));
                        }
                    }
                }
                Scenario::Injector => attempt!("injector", scenarios::injector(&mut bench, &root)),
                Scenario::Edit => attempt!("edit", edit::edit_to_page(&mut bench, &target_dir)),
                Scenario::Supervisor => {
                    attempt!(
                        "supervisor",
                        supervisor::supervisor(&mut bench, &target_dir)
                    )
                }
                Scenario::All => {}
            }
        });
        let other = others_share(scenario_cpu);
        println!("  (other processes used {other:.0}% of the machine)");
        others.push((name, other));
    }
    others.push(("whole run".to_owned(), others_share(run_cpu)));
    runtime.shutdown_timeout(Duration::from_secs(5));
    loads.push(format!("end {}", load_average()));

    // The section: what the run measured, how and where, then its figures.
    let date = format!("{} {} UTC", &date[..10], &date[11..16]);
    let args = std::env::args().skip(1).filter(|a| a != "--bench");
    let args = args.collect::<Vec<_>>().join(" ");
    let command = format!("cargo bench --bench harness -- {args}");
    let command = command.trim_end().trim_end_matches(" --");
    let scenarios = format!("{scenarios:?}").to_lowercase();
    let scenarios = scenarios.replace(['[', ']'], "");
    let share = |(what, share): &(String, f64)| format!("{what} {share:.0}%");
    let shares: Vec<String> = others.iter().map(share).collect();
    let mut section = format!(
        "## {} — {scenarios}\n\n- date: {date}\n- command: `{command}`\n- machine: {}\n\
         - sources: {}\n- open-file limit: {files}\n\
         - load average (1, 5, 15 min) as the run went: {}\n\
         - CPU time used by processes other than the harness and what it ran, as a share of the \
         machine (approximate: on a quiet machine it reads 5–10%, kernel time spent on the \
         benchmark's own connections; in `edit` it counts Chromium): {}\n",
        &date[..10],
        machine(&root),
        source_state(&root),
        loads.join("; "),
        shares.join(", "),
    );
    let shared = |(what, share): &(String, f64)| *share >= 25.0 && what != "edit";
    if others[..others.len() - 1].iter().any(shared) {
        section.push_str(
            "- **the machine was shared**: other work (builds, tests) took a quarter of the CPU or \
             more during some scenarios, so their timings are pessimistic\n",
        );
    }
    section = section + "\n" + &bench.report.figures(&targets);
    println!("\n{section}");
    if !bench.options.no_record {
        record(&root.join("BENCHMARKS.md"), &section)?;
        println!("recorded in BENCHMARKS.md");
    }
    Ok(())
}

/// When, and the clock ticks (100 a second) that the machine spent running
/// processes, and that this process and the children it waited for spent.
type CpuSample = (Instant, u64, u64);

fn cpu_sample() -> CpuSample {
    let ticks = |text: &str, skip, take| -> u64 {
        let fields = text.split_whitespace().skip(skip).take(take);
        fields.filter_map(|f| f.parse::<u64>().ok()).sum()
    };
    // user nice system: time charged to processes. Interrupts and softirqs (where
    // loopback TCP is processed) are charged to no process, so they are left out on
    // both sides.
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let busy = ticks(stat.lines().next().unwrap_or_default(), 1, 3);
    // utime stime cutime cstime: fields 14–17, 11–14 after comm (whose text may
    // hold spaces and parentheses).
    let own = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let own = ticks(own.rsplit_once(')').map_or("", |(_, after)| after), 11, 4);
    (Instant::now(), busy, own)
}

/// The share of the machine's CPU, in percent, that processes other than this one and
/// its waited-for children used since `since`. Children killed without a wait of
/// their own (Chromium's helpers) count as others.
fn others_share((at, busy, own): CpuSample) -> f64 {
    let (_, busy_now, own_now) = cpu_sample();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let capacity = at.elapsed().as_secs_f64() * 100.0 * cores;
    let others = busy_now.saturating_sub(busy) as f64 - own_now.saturating_sub(own) as f64;
    (100.0 * others / capacity.max(1.0)).clamp(0.0, 100.0)
}

fn load_average() -> String {
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    load.join(" ")
}

/// The standard output of `command` (words split at spaces) run in `root`,
/// without its last line's end, if it succeeded.
fn output(root: &Path, command: &str) -> Option<String> {
    let mut words = command.split(' ');
    let mut command = Command::new(words.next()?);
    let out = command.args(words).current_dir(root).output().ok()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    out.status.success().then(|| stdout.trim_end().to_owned())
}

/// The commit and whether the sources measured differ from it.
fn source_state(root: &Path) -> String {
    // BENCH_SOURCES: say what was measured when it is not this checkout's state
    // (a copy of a commit, say).
    if let Ok(described) = std::env::var("BENCH_SOURCES") {
        return described;
    }
    let commit = output(root, "git rev-parse --short HEAD").unwrap_or_else(|| "unknown".into());
    let status = "git status --porcelain -- src demo Cargo.toml Cargo.lock";
    let dirty = output(root, status).unwrap_or_default();
    let files: Vec<&str> = dirty.lines().map(|l| l.get(3..).unwrap_or(l)).collect();
    let changes = format!(" plus uncommitted changes to {}", files.join(", "));
    let changes = report::when(!files.is_empty(), changes);
    format!("commit {commit}{changes}")
}

/// The machine: CPU, cores, memory, kernel, rustc, wrk.
fn machine(root: &Path) -> String {
    let read = |path| fs::read_to_string(path).unwrap_or_default();
    let field = |text: &str, name| {
        let line = text.lines().find_map(|l| l.strip_prefix(name))?;
        Some(line.trim_start_matches([' ', '\t', ':']).to_owned())
    };
    let cpu = field(&read("/proc/cpuinfo"), "model name").unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kib = field(&read("/proc/meminfo"), "MemTotal").unwrap_or_default();
    let kib: f64 = kib.trim_end_matches(" kB").parse().unwrap_or(0.0);
    let gib = kib / 1024.0 / 1024.0;
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_owned();
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc = output(root, &format!("{rustc} -V")).unwrap_or_default();
    // `wrk -v` prints its version, then exits 1.
    let wrk = Command::new("wrk").arg("-v").output().map(|out| out.stdout);
    let wrk = String::from_utf8_lossy(&wrk.unwrap_or_default()).into_owned();
    let wrk = wrk.split_whitespace().nth(1).unwrap_or("not installed");
    format!("{cpu}, {cores} cores, {gib:.0} GiB; Linux {kernel}; {rustc}; wrk {wrk}")
}

/// Replaces the section with the same heading in `path`, or appends it.
fn record(path: &Path, section: &str) -> io::Result<()> {
    let existing = fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
    // The preamble, then each section without its `## `.
    let parts = existing.trim_end().split("\n## ");
    let mut parts: Vec<String> = parts.map(|p| p.trim_end().to_owned() + "\n").collect();
    let section = section.trim_start_matches("## ").trim_end().to_owned() + "\n";
    let heading = section.lines().next();
    let same = |part: &String| part.lines().next() == heading;
    match parts.iter().skip(1).position(same) {
        Some(at) => parts[at + 1] = section,
        None => parts.push(section),
    }
    fs::write(path, parts.join("\n## "))
}
