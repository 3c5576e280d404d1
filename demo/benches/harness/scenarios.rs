//! The measured scenarios, each bounded in count and time.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::process::Command as StdCommand;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use nix::sys::signal::Signal;
use tokio::task::JoinSet;

use crate::client::{self, EventStream, Failure};
use crate::report::{median, ms, percentile, thousands, Report};
use crate::server::{self, App, PassedSocket, Server, Target, Workspace};

/// How long a server may take to answer after it was spawned.
const READY: Duration = Duration::from_secs(20);
/// How long a server may take to exit after SIGINT before it counts as hung and is
/// killed: half of watchexec's stop timeout.
const EXIT_CAP: Duration = Duration::from_secs(5);
/// How long opening N connections may take in all (the baseline's backlog of 1
/// drops connection attempts, which then wait for SYN retransmits).
const OPEN_LIMIT: Duration = Duration::from_secs(120);
/// The time limit of one request of the load.
const REQUEST_LIMIT: Duration = Duration::from_secs(5);

/// Arguments that every run gets: the static files, and for the baseline the page
/// it holds in memory.
fn base_args(target: &Target, work: &Workspace) -> Vec<String> {
    let mut args = vec![
        "--static-dir".to_owned(),
        work.static_dir.display().to_string(),
    ];
    if target.app == App::Baseline {
        args.push("--page".to_owned());
        args.push(work.static_dir.join("page.html").display().to_string());
    }
    args
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

// ---- restarts under load -------------------------------------------------------

/// What the load clients saw.
#[derive(Default)]
struct Load {
    latencies: Vec<Duration>,
    failures: BTreeMap<Failure, usize>,
    worst_failure_after: Option<Duration>,
}

/// The binary restarted `count` times on one passed socket (SIGINT, wait for the
/// exit, spawn the next at once, as watchexec does) while `clients` clients send
/// `GET /`, each request on a fresh connection.
pub(crate) async fn restarts(
    target: &Target,
    work: &Workspace,
    count: usize,
    clients: usize,
    dwell: Duration,
    static_watch: bool,
    report: &mut Report,
) -> io::Result<()> {
    let socket = PassedSocket::new(1)?;
    let addr = socket.addr;
    let mut args = base_args(target, work);
    if !static_watch {
        // A static directory that does not exist: the demo then watches nothing
        // (it warns and goes on); `GET /` does not need it.
        args[1] = work.dir.join("no-static-dir").display().to_string();
    }
    let log = format!("restarts-{}", target.name);
    let mut server = Server::spawn(target, &socket, &as_strs(&args), &[], work, &log)?;
    let mut instance = server::wait_ready(addr, None, READY).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let mut load = JoinSet::new();
    for _ in 0..clients {
        let stop = Arc::clone(&stop);
        load.spawn(async move {
            let mut seen = Load::default();
            // Bounded: the controller stops the clients; the count is a backstop.
            for _ in 0..5_000_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let (took, outcome) = client::timed_get(addr, "/", REQUEST_LIMIT).await;
                seen.latencies.push(took);
                if let Err(failure) = outcome {
                    *seen.failures.entry(failure).or_default() += 1;
                    seen.worst_failure_after = seen.worst_failure_after.max(Some(took));
                }
            }
            seen
        });
    }

    let mut exits = Vec::with_capacity(count);
    let mut starts = Vec::with_capacity(count);
    let mut hung = 0_usize;
    let mut not_ready = 0_usize;
    let started = Instant::now();
    for _ in 0..count {
        tokio::time::sleep(dwell).await;
        let signalled = Instant::now();
        server.signal(Signal::SIGINT);
        match server.exit_within(signalled, EXIT_CAP).await {
            Some(took) => exits.push(took),
            None => hung += 1,
        }
        server = Server::spawn(target, &socket, &as_strs(&args), &[], work, &log)?;
        match server::wait_ready(addr, Some(&instance), READY).await {
            Ok(new) => {
                starts.push(server.spawned.elapsed());
                instance = new;
            }
            Err(err) => {
                not_ready += 1;
                report.note(format!("restarts ({}): {err}", target.name));
            }
        }
        if started.elapsed() > Duration::from_secs(600) {
            report.note(format!(
                "restarts ({}): stopped after {} restarts, 10 minutes",
                target.name,
                exits.len() + hung
            ));
            break;
        }
    }
    tokio::time::sleep(dwell).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Load::default();
    while let Some(joined) = load.join_next().await {
        let seen = joined.map_err(io::Error::other)?;
        all.latencies.extend(seen.latencies);
        for (failure, n) in seen.failures {
            *all.failures.entry(failure).or_default() += n;
        }
        all.worst_failure_after = all.worst_failure_after.max(seen.worst_failure_after);
    }
    server.stop(EXIT_CAP).await;
    let restarted = exits.len() + hung;

    all.latencies.sort_unstable();
    exits.sort_unstable();
    starts.sort_unstable();
    let failed: usize = all.failures.values().sum();
    let total = all.latencies.len();
    let worst = all.latencies.last().copied().unwrap_or_default();
    let name = target.name;
    let label = |figure: &str| {
        if static_watch {
            figure.to_owned()
        } else {
            format!("{figure} [no static watcher]")
        }
    };
    report.set(
        &label("restarts under load: failed requests"),
        "0",
        name,
        format!(
            "{failed} of {} in {restarted} restarts",
            thousands(total as u64)
        ),
        Some(failed == 0 && hung == 0 && not_ready == 0),
    );
    report.set(
        &label("restarts under load: worst request latency"),
        "≤ 25 ms",
        name,
        format!(
            "{} (p50 {}, p99 {})",
            ms(worst),
            ms(percentile(&all.latencies, 50.0)),
            ms(percentile(&all.latencies, 99.0))
        ),
        Some(worst <= Duration::from_millis(25)),
    );
    report.set(
        &label("restarts: SIGINT → exit (median, max)"),
        "",
        name,
        format!(
            "{}, {}{}",
            ms(percentile(&exits, 50.0)),
            ms(exits.last().copied().unwrap_or_default()),
            if hung > 0 {
                format!("; {hung} did not exit in {} s", EXIT_CAP.as_secs())
            } else {
                String::new()
            }
        ),
        None,
    );
    report.set(
        &label("restarts: spawn → first answer (median, max)"),
        "",
        name,
        format!(
            "{}, {}",
            ms(percentile(&starts, 50.0)),
            ms(starts.last().copied().unwrap_or_default())
        ),
        None,
    );
    if failed > 0 {
        let kinds: Vec<String> = all
            .failures
            .iter()
            .map(|(failure, n)| format!("{n} × {failure}"))
            .collect();
        report.note(format!(
            "restarts ({name}): failures: {}; the slowest failure took {}",
            kinds.join(", "),
            ms(all.worst_failure_after.unwrap_or_default())
        ));
    }
    println!(
        "  restarts {name}: {restarted} restarts, {total} requests, {failed} failed, worst {}, exit median {}",
        ms(worst),
        ms(percentile(&exits, 50.0))
    );
    Ok(())
}

// ---- open streams: memory, fan-out, shutdown ---------------------------------------

/// Which measurements a session with open streams makes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StreamFigures {
    pub(crate) memory: bool,
    pub(crate) fanout: bool,
    pub(crate) shutdown: bool,
    /// How many broadcasts the fan-out figure takes the median of.
    pub(crate) fanout_rounds: usize,
}

/// Open `n` reload streams at most `concurrency` at a time; every one has its
/// `hello`.
async fn open_streams(
    addr: std::net::SocketAddr,
    n: usize,
    concurrency: usize,
) -> io::Result<Vec<EventStream>> {
    // Bounded in time as a whole too: past the deadline the rest fail at once.
    let deadline = Instant::now() + OPEN_LIMIT;
    let opened: Vec<io::Result<EventStream>> = stream::iter(0..n)
        .map(|_| async move {
            if Instant::now() > deadline {
                return Err(io::ErrorKind::TimedOut.into());
            }
            tokio::time::timeout(Duration::from_secs(20), EventStream::open(addr))
                .await
                .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut streams = Vec::with_capacity(n);
    let mut errors = BTreeMap::<String, usize>::new();
    for result in opened {
        match result {
            Ok(stream) => streams.push(stream),
            Err(err) => *errors.entry(err.to_string()).or_default() += 1,
        }
    }
    if !errors.is_empty() {
        return Err(io::Error::other(format!(
            "{} of {n} streams did not open: {errors:?}",
            n - streams.len()
        )));
    }
    Ok(streams)
}

/// One server with `n` open reload streams: its memory, one reload broadcast to
/// all (SIGUSR1), then its shutdown (SIGINT).
pub(crate) async fn streams(
    target: &Target,
    work: &Workspace,
    n: usize,
    want: StreamFigures,
    report: &mut Report,
) -> io::Result<()> {
    let name = target.name;
    let socket = PassedSocket::new(1)?;
    let addr = socket.addr;
    let args = base_args(target, work);
    let mut server = Server::spawn(
        target,
        &socket,
        &as_strs(&args),
        &[],
        work,
        &format!("streams-{n}-{name}"),
    )?;
    server::wait_ready(addr, None, READY).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = server.rss_kib()?;

    // The baseline keeps the socket's backlog of 1: more connections at once than
    // it accepts would wait for SYN retransmits (1 s, 3 s, …).
    let concurrency = match target.app {
        App::Demo => 128,
        App::Baseline => 2,
    };
    let opening = Instant::now();
    let streams = open_streams(addr, n, concurrency).await?;
    let opened_in = opening.elapsed();
    let status = client::get(addr, "/auto_refresh/status").await?;
    let counted = server::json_number(&status.text(), "open_streams");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let loaded = server.rss_kib()?;
    println!(
        "  streams {name} n={n}: opened in {}, server counts {counted:?}, RSS {idle} → {loaded} KiB",
        ms(opened_in)
    );
    let n_label = thousands(n as u64);

    if want.memory {
        // Information, not a goal: a developer holds one to three streams (one per
        // browser, shared by its tabs).
        let per_stream = (loaded.saturating_sub(idle)) as f64 / n as f64;
        report.set(
            &format!("memory per stream, {n_label} streams"),
            "",
            name,
            format!("{per_stream:.1} KiB (RSS {idle} → {loaded} KiB)"),
            None,
        );
    }
    report.set(
        &format!("opening {n_label} streams (demo 128 at a time, baseline 2)"),
        "",
        name,
        ms(opened_in),
        None,
    );

    let mut streams = streams;
    if want.fanout {
        // Each round: every stream waits for `reload`, one SIGUSR1, all arrivals.
        let mut lasts = Vec::with_capacity(want.fanout_rounds);
        let mut medians = Vec::with_capacity(want.fanout_rounds);
        let mut missing = 0_usize;
        for _ in 0..want.fanout_rounds {
            let mut waiting = JoinSet::new();
            for mut stream in streams.drain(..) {
                waiting.spawn(async move {
                    let got =
                        tokio::time::timeout(Duration::from_secs(5), stream.wait_event(b"reload"))
                            .await;
                    (stream, got.ok().and_then(Result::ok))
                });
            }
            // Let every task reach its read before the signal.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let signalled = Instant::now();
            server.signal(Signal::SIGUSR1);
            let mut arrivals = Vec::with_capacity(n);
            while let Some(joined) = waiting.join_next().await {
                let (stream, got) = joined.map_err(io::Error::other)?;
                if let Some(at) = got {
                    arrivals.push(at.saturating_duration_since(signalled));
                }
                streams.push(stream);
            }
            arrivals.sort_unstable();
            missing += n - arrivals.len();
            lasts.push(arrivals.last().copied().unwrap_or_default());
            medians.push(percentile(&arrivals, 50.0));
        }
        lasts.sort_unstable();
        medians.sort_unstable();
        let last = percentile(&lasts, 50.0);
        let worst = lasts.last().copied().unwrap_or_default();
        let rounds = want.fanout_rounds;
        let goal_ms = (n >= 10_000).then_some(100);
        report.set(
            &format!("fan-out to {n_label} streams: last `reload` (median of {rounds} broadcasts; worst)"),
            if goal_ms.is_some() { "≤ 100 ms" } else { "" },
            name,
            format!(
                "{}; worst {} (p50 arrival {}){}",
                ms(last),
                ms(worst),
                ms(percentile(&medians, 50.0)),
                if missing == 0 {
                    String::new()
                } else {
                    format!("; {missing} arrivals missing after 5 s")
                }
            ),
            goal_ms.map(|g| missing == 0 && last <= Duration::from_millis(g)),
        );
        println!(
            "  fan-out {name} n={n}: last arrival per broadcast {:?}",
            lasts.iter().map(|d| ms(*d)).collect::<Vec<_>>()
        );
    }

    if want.shutdown {
        let mut reading = JoinSet::new();
        for stream in streams.drain(..) {
            reading.spawn(async move {
                tokio::time::timeout(EXIT_CAP + Duration::from_secs(3), stream.read_to_end()).await
            });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let signalled = Instant::now();
        server.signal(Signal::SIGINT);
        let exit = server.exit_within(signalled, EXIT_CAP).await;
        let mut restarts = Vec::with_capacity(n);
        let mut clean = 0_usize;
        let mut reset = 0_usize;
        let mut open = 0_usize;
        while let Some(joined) = reading.join_next().await {
            match joined.map_err(io::Error::other)? {
                Ok(end) => {
                    if let Some(at) = end.restart {
                        restarts.push(at.saturating_duration_since(signalled));
                    }
                    match end.ended {
                        Some((_, true)) => clean += 1,
                        Some((_, false)) => reset += 1,
                        None => open += 1,
                    }
                }
                Err(_) => open += 1,
            }
        }
        restarts.sort_unstable();
        let goal = match n {
            1_000 => Some(Duration::from_millis(50)),
            10_000 => Some(Duration::from_millis(500)),
            _ => None,
        };
        let exit_text = match exit {
            Some(took) => ms(took),
            None => format!("did not exit in {} s (killed)", EXIT_CAP.as_secs()),
        };
        report.set(
            &format!("shutdown with {n_label} streams: SIGINT → exit"),
            &goal.map_or(String::new(), |g| format!("≤ {} ms", g.as_millis())),
            name,
            format!(
                "{exit_text}; {}/{n} got `restart`{}",
                restarts.len(),
                if reset > 0 {
                    format!(", {reset} reset")
                } else {
                    String::new()
                }
            ),
            goal.map(|g| exit.is_some_and(|took| took <= g) && restarts.len() == n),
        );
        report.set(
            &format!("shutdown with {n_label} streams: last `restart` (from SIGINT)"),
            "",
            name,
            if restarts.is_empty() {
                "none".into()
            } else {
                format!(
                    "{} (p50 {})",
                    ms(restarts.last().copied().unwrap_or_default()),
                    ms(percentile(&restarts, 50.0))
                )
            },
            None,
        );
        println!(
            "  shutdown {name} n={n}: exit {exit_text}, {} restart events, {clean} clean ends, {reset} resets, {open} open",
            restarts.len()
        );
    } else {
        drop(streams);
        server.stop(EXIT_CAP).await;
    }
    Ok(())
}

/// What an open connection holds while the memory is read.
#[derive(Clone, Copy, Debug)]
enum Idle {
    /// Connected, nothing sent: the server waits for a request head.
    Silent,
    /// One small request answered (`GET /auto_refresh/status`), kept alive.
    KeepAlive,
}

/// Memory per connection that is not a stream, for comparison with the streams:
/// `n` silent connections, then `n` idle keep-alive connections, each against a
/// fresh server.
pub(crate) async fn memory_breakdown(
    target: &Target,
    work: &Workspace,
    n: usize,
    report: &mut Report,
) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let name = target.name;
    let n_label = thousands(n as u64);
    for idle in [Idle::Silent, Idle::KeepAlive] {
        let socket = PassedSocket::new(1)?;
        let addr = socket.addr;
        let args = base_args(target, work);
        let server = Server::spawn(
            target,
            &socket,
            &as_strs(&args),
            &[],
            work,
            &format!("memory-{name}"),
        )?;
        server::wait_ready(addr, None, READY).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = server.rss_kib()?;
        let concurrency = match target.app {
            App::Demo => 128,
            App::Baseline => 2,
        };
        let deadline = Instant::now() + OPEN_LIMIT;
        let opened: Vec<io::Result<tokio::net::TcpStream>> = stream::iter(0..n)
            .map(|_| async move {
                if Instant::now() > deadline {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                let connect = async {
                    let mut stream = tokio::net::TcpStream::connect(addr).await?;
                    if let Idle::KeepAlive = idle {
                        stream
                            .write_all(
                                b"GET /auto_refresh/status HTTP/1.1\r\nHost: localhost\r\n\r\n",
                            )
                            .await?;
                        let mut got = Vec::new();
                        let mut chunk = [0_u8; 512];
                        while !got.ends_with(b"}") {
                            let read = stream.read(&mut chunk).await?;
                            if read == 0 {
                                return Err(io::ErrorKind::UnexpectedEof.into());
                            }
                            got.extend_from_slice(&chunk[..read]);
                        }
                    }
                    Ok(stream)
                };
                tokio::time::timeout(Duration::from_secs(20), connect)
                    .await
                    .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let open = opened.iter().filter(|r| r.is_ok()).count();
        // Silent connections are closed by the header read timeout (10 s): read
        // well before.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = server.rss_kib()?;
        drop(opened);
        server.stop(EXIT_CAP).await;
        let per = after.saturating_sub(before) as f64 / open.max(1) as f64;
        let what = match idle {
            Idle::Silent => "silent connections (accepted, no request yet)",
            Idle::KeepAlive => "idle keep-alive connections (one request answered)",
        };
        report.set(
            &format!("memory per connection, {n_label} {what}"),
            "",
            name,
            format!("{per:.1} KiB (RSS {before} → {after} KiB, {open} open)"),
            None,
        );
        println!("  memory {name} {idle:?} n={n}: {per:.1} KiB per connection");
    }
    Ok(())
}

// ---- injection cost (wrk) ---------------------------------------------------------

/// What wrk measured.
#[derive(Clone, Copy, Debug, Default)]
struct WrkRun {
    requests_per_s: f64,
    errors: u64,
}

fn wrk(url: &str, seconds: u64, connections: u32) -> io::Result<WrkRun> {
    let output = StdCommand::new("wrk")
        .args(["-t2", &format!("-c{connections}"), &format!("-d{seconds}s")])
        .arg(url)
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let mut run = WrkRun::default();
    for line in text.lines() {
        let line = line.trim();
        if let Some(value) = line.strip_prefix("Requests/sec:") {
            run.requests_per_s = value.trim().parse().unwrap_or(0.0);
        } else if let Some(value) = line.strip_prefix("Non-2xx or 3xx responses:") {
            run.errors += value.trim().parse::<u64>().unwrap_or(0);
        } else if let Some(value) = line.strip_prefix("Socket errors:") {
            run.errors += value
                .split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    Ok(run)
}

/// One server configuration of the injection-cost runs.
struct Config {
    label: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, &'static str)>,
    path: &'static str,
    /// Whether the script must be in the page.
    injected: bool,
}

/// Requests per second for the 20 KiB page with the layer injecting and without,
/// `rounds` interleaved runs of `seconds` each, 64 keep-alive connections.
pub(crate) async fn inject_cost(
    target: &Target,
    work: &Workspace,
    page_len: usize,
    seconds: u64,
    rounds: usize,
    report: &mut Report,
) -> io::Result<()> {
    if which("wrk").is_none() {
        report.note(
            "injection cost: wrk is not installed (`apt-get install -y wrk`): skipped".into(),
        );
        return Ok(());
    }
    let name = target.name;
    let base = base_args(target, work);
    let config = |label, layer: bool, env, path, injected| Config {
        label,
        args: if layer {
            vec!["--layer".to_owned()]
        } else {
            Vec::new()
        },
        env,
        path,
        injected,
    };
    let configs = match target.app {
        App::Demo => vec![
            config(
                "on",
                false,
                vec![("AXUM_AUTORELOAD", "1")],
                "/static/page.html",
                true,
            ),
            config(
                "off",
                false,
                vec![("AXUM_AUTORELOAD", "0")],
                "/static/page.html",
                false,
            ),
        ],
        App::Baseline => vec![
            config("layer", true, vec![], "/static/page.html", true),
            config("none", false, vec![], "/static/page.html", false),
            config("layer", true, vec![], "/page", true),
            config("none", false, vec![], "/page", false),
        ],
    };
    // Servers on sockets with a large backlog: wrk's 64 connections at once must
    // not wait for SYN retransmits, which would measure the backlog, not the layer.
    let mut running = Vec::new();
    for Config {
        label,
        args: extra,
        env,
        path,
        injected,
    } in &configs
    {
        let socket = PassedSocket::new(1024)?;
        let mut args = base.clone();
        args.extend(extra.iter().cloned());
        let server = Server::spawn(
            target,
            &socket,
            &as_strs(&args),
            env,
            work,
            &format!("inject-{name}"),
        )?;
        server::wait_answer(socket.addr, path, READY).await?;
        let page = client::get(socket.addr, path).await?;
        let has_script = page.text().contains("data-instance=");
        if page.status != 200 || has_script != *injected || page.body.len() < page_len {
            return Err(io::Error::other(format!(
                "{name} {label} {path}: status {}, {} bytes, script {has_script}, expected {injected}",
                page.status,
                page.body.len()
            )));
        }
        let url = format!("http://{}{path}", socket.addr);
        // Warm up (connections, caches) once.
        tokio::task::spawn_blocking({
            let url = url.clone();
            move || wrk(&url, 1, 64)
        })
        .await
        .map_err(io::Error::other)??;
        running.push((*label, *path, url, server, socket, Vec::<f64>::new(), 0_u64));
    }
    for _ in 0..rounds {
        for (_, _, url, _, _, results, errors) in &mut running {
            let url = url.clone();
            let run = tokio::task::spawn_blocking(move || wrk(&url, seconds, 64))
                .await
                .map_err(io::Error::other)??;
            results.push(run.requests_per_s);
            *errors += run.errors;
        }
    }
    let mut by_path: BTreeMap<&str, Vec<(&str, f64, u64)>> = BTreeMap::new();
    for (label, path, _, server, _, results, errors) in running {
        server.stop(EXIT_CAP).await;
        by_path
            .entry(path)
            .or_default()
            .push((label, median(&results), errors));
        println!("  inject {name} {label} {path}: {results:.0?} req/s, {errors} errors");
    }
    for (path, runs) in by_path {
        let [(with_label, with, with_errors), (without_label, without, without_errors)] = runs[..]
        else {
            continue;
        };
        let ratio = if without > 0.0 { with / without } else { 0.0 };
        let what = if path == "/page" {
            "in-memory page"
        } else {
            "static file"
        };
        let figure = match target.app {
            App::Demo => format!("injection cost: 20 KiB {what}, req/s reload on ÷ off"),
            App::Baseline => {
                format!("injection cost: 20 KiB {what}, req/s with ÷ without the layer")
            }
        };
        let errors = with_errors + without_errors;
        report.set(
            &figure,
            "≥ 0.95×",
            name,
            format!(
                "{ratio:.3}× ({} vs {} req/s{})",
                thousands(with as u64),
                thousands(without as u64),
                if errors > 0 {
                    format!(", {errors} errors")
                } else {
                    String::new()
                }
            ),
            Some(ratio >= 0.95 && errors == 0),
        );
        let _ = (with_label, without_label);
    }
    Ok(())
}

/// The first executable called `name` on PATH.
pub(crate) fn which(name: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

// ---- injector throughput (criterion) ------------------------------------------------

/// Run `cargo bench --bench inject` and read criterion's estimates.
pub(crate) fn injector(
    manifest_dir: &Path,
    criterion_home: &Path,
    report: &mut Report,
) -> io::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = StdCommand::new(cargo)
        .args(["bench", "--bench", "inject", "--", "--noplot"])
        .current_dir(manifest_dir)
        .env("CRITERION_HOME", criterion_home)
        .status()?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "cargo bench --bench inject: {status}"
        )));
    }
    const MIB: f64 = 1024.0 * 1024.0;
    let mut cells = Vec::new();
    for (bench, label) in [
        ("layer", "through InjectLayer (reload on)"),
        ("layer_off", "through InjectLayer (reload off)"),
        ("no_layer", "the service alone"),
    ] {
        let estimates = criterion_home.join(format!("inject/{bench}/new/estimates.json"));
        let text = std::fs::read_to_string(&estimates)?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(io::Error::other)?;
        let ns = json
            .pointer("/mean/point_estimate")
            .and_then(serde_json::Value::as_f64)
            .ok_or_else(|| io::Error::other(format!("no mean in {}", estimates.display())))?;
        let gib_per_s = MIB / (ns * 1e-9) / (1024.0 * MIB);
        cells.push((bench, label, gib_per_s, ns));
    }
    for (bench, label, gib_per_s, ns) in &cells {
        let goal = if *bench == "layer" { "≥ 1 GiB/s" } else { "" };
        report.set(
            &format!("injector throughput, 1 MiB in 4 KiB chunks, {label}"),
            goal,
            "release",
            format!("{gib_per_s:.2} GiB/s ({:.0} µs per MiB)", ns / 1000.0),
            (*bench == "layer").then_some(*gib_per_s >= 1.0),
        );
    }
    Ok(())
}
