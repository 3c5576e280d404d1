//! The servers under test (spawned on a socket passed the way watchexec passes
//! it, signalled and measured) and the scenarios measured on them, each bounded
//! in count and time.

use std::fs;
use std::future::Future;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dev_support::http;
use dev_support::process::Proc;
use dev_support::socket::PassedSocket;
use dev_support::sse::EventStream;
use dev_support::tools::{find_or_skip, WRK};
use dev_support::wait;
use futures_util::stream::{self, StreamExt};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitid, Id, WaitPidFlag};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::report::{median, ms, thousands, when, Latencies};
use crate::{Bench, Scenario, Target};

/// How long a server may take to answer after it was spawned.
const READY: Duration = Duration::from_secs(20);

/// How long a server may take to exit after SIGINT before it counts as hung and is
/// killed: half of watchexec's stop timeout.
pub(crate) const EXIT_CAP: Duration = Duration::from_secs(5);

/// The size of `page.html`, 20 KiB of HTML.
pub(crate) const PAGE_SIZE: usize = 20 * 1024;

/// A running server: SIGINT and up to [`EXIT_CAP`] when dropped, then SIGKILL.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) proc: Proc,
    pub(crate) spawned: Instant,
}

impl Server {
    /// Spawns `target` from `dir/bin` on `socket`, in `dir/work` (the demo keeps
    /// its database there) with its static files in `dir/work/static` (and for the
    /// baseline `page.html` held in memory); with the script injected into pages
    /// (`inject`: the demo's reload on, the baseline's `--layer`) or not.
    pub(crate) fn spawn(target: Target, socket: &PassedSocket, dir: &Path, inject: bool) -> Self {
        let mut command = Command::new(dir.join("bin").join(target.name()));
        let work = dir.join("work");
        command.arg("--static-dir").arg(work.join("static"));
        if target.is_baseline() {
            command.arg("--page").arg(work.join("static/page.html"));
            command.args(inject.then_some("--layer"));
        } else {
            // Release builds have reload off unless told.
            command.env("AXUM_AUTORELOAD", if inject { "1" } else { "0" });
        }
        socket.pass_to(command.current_dir(work).env("RUST_LOG", "info"));
        let spawned = Instant::now();
        let proc = Proc::spawn(target.name(), command).stop_with(Signal::SIGINT, EXIT_CAP);
        Self { proc, spawned }
    }

    /// Waits at most `limit` for the process to exit: how long it took from
    /// `since`. waitid(WEXITED | WNOWAIT) on a blocking thread sees the exit at
    /// once (where polling would add up to its interval) and leaves the reaping to
    /// the [`Proc`].
    pub(crate) async fn exit_within(&self, since: Instant, limit: Duration) -> Option<Duration> {
        let pid = self.proc.pid();
        let exit = tokio::task::spawn_blocking(move || {
            waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
        });
        let exited = matches!(tokio::time::timeout(limit, exit).await, Ok(Ok(Ok(_))));
        exited.then(|| since.elapsed())
    }

    /// Resident memory (`VmRSS` of /proc/PID/status), in KiB.
    pub(crate) fn rss_kib(&self) -> io::Result<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.proc.pid()))?;
        let rss = status.lines().find_map(|line| line.strip_prefix("VmRSS:"));
        let kib = rss.and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
        kib.ok_or_else(|| io::Error::other("no VmRSS"))
    }
}

/// Asks `GET /auto_refresh/status` every 2 ms (to time a start closely), each
/// time within 5 s, until a server whose instance is not `previous` answers;
/// returns its instance. Fails after `limit`.
pub(crate) async fn new_instance(
    addr: SocketAddr,
    previous: Option<&str>,
    limit: Duration,
) -> io::Result<String> {
    let each = Duration::from_secs(5);
    Ok(new_instance_waits(addr, previous, limit, each).await?.0)
}

/// [`new_instance`] with each request given up to `each`: the instance, and the
/// longest that one of the requests waited for its answer (or its failure).
pub(crate) async fn new_instance_waits(
    addr: SocketAddr,
    previous: Option<&str>,
    limit: Duration,
    each: Duration,
) -> io::Result<(String, Duration)> {
    let (started, mut longest) = (Instant::now(), Duration::ZERO);
    while started.elapsed() < limit {
        let asked = Instant::now();
        let answer = tokio::time::timeout(each, http::get(addr, "/auto_refresh/status")).await;
        longest = longest.max(asked.elapsed());
        let answer = answer.ok().and_then(Result::ok).filter(|r| r.status == 200);
        let instance = answer.and_then(|r| Some(json(&r.text(), "instance")?.as_str()?.to_owned()));
        if let Some(instance) = instance.filter(|id| previous != Some(id)) {
            return Ok((instance, longest));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let late = format!("no new server answered on {addr} within {limit:?}");
    Err(io::Error::new(io::ErrorKind::TimedOut, late))
}

/// The value of `key` in a JSON object.
pub(crate) fn json(text: &str, key: &str) -> Option<serde_json::Value> {
    let mut object: serde_json::Value = serde_json::from_str(text).ok()?;
    Some(object.get_mut(key)?.take())
}

/// A server of `target` on a new passed socket, answering; its instance.
async fn ready(dir: &Path, target: Target) -> io::Result<(Server, PassedSocket, String)> {
    let socket = PassedSocket::new();
    // As a developer runs them: the demo with reload on, the baseline plain.
    let server = Server::spawn(target, &socket, dir, !target.is_baseline());
    let instance = new_instance(socket.addr, None, READY).await?;
    Ok((server, socket, instance))
}

/// Makes `n` connections to a server of `target` with `connect`, each within
/// 20 s and all within 120 s, at most 128 at a time, or 2 for the baseline: it
/// keeps the socket's backlog of 1, and more connections at once than it accepts
/// would wait for SYN retransmits (1 s, 3 s, …).
async fn open_all<T, F>(target: Target, n: usize, connect: impl Fn() -> F) -> Vec<io::Result<T>>
where
    F: Future<Output = io::Result<T>>,
{
    let at_once = if target.is_baseline() { 2 } else { 128 };
    let deadline = Instant::now() + Duration::from_secs(120);
    let timed_out = |_| Err(ErrorKind::TimedOut.into());
    let each = |_| {
        let limit = deadline.min(Instant::now() + Duration::from_secs(20));
        let connecting = tokio::time::timeout_at(limit.into(), connect());
        async move { connecting.await.unwrap_or_else(timed_out) }
    };
    let opened = stream::iter(0..n).map(each).buffer_unordered(at_once);
    opened.collect().await
}

/// [`Scenario::Restarts`] of `target`.
pub(crate) async fn restarts(bench: &mut Bench, target: Target) -> io::Result<()> {
    let (name, options) = (target.name(), &bench.options);
    let (mut server, socket, mut instance) = ready(&bench.dir, target).await?;
    let (addr, dwell) = (socket.addr, Duration::from_millis(options.dwell_ms));
    let stop = Arc::new(AtomicBool::new(false));
    // Each client sends `GET /` on a fresh connection, one after another: every
    // request's latency, and each failure's kind and latency. Dropping the set (on
    // an error or a panic) stops them.
    let mut clients = JoinSet::new();
    for _ in 0..options.clients {
        let stop = Arc::clone(&stop);
        clients.spawn(async move {
            let (mut latencies, mut failures) = (Latencies::default(), Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let asked = tokio::time::timeout(Duration::from_secs(5), http::get(addr, "/"));
                let (answer, took) = (asked.await, started.elapsed());
                latencies.record(took);
                let failure = match answer {
                    Ok(Ok(response)) if response.status == 200 => continue,
                    Ok(Ok(response)) => format!("status {}", response.status),
                    Ok(Err(err)) => match err.kind() {
                        ErrorKind::ConnectionRefused => "connection refused",
                        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => "connection reset",
                        ErrorKind::UnexpectedEof | ErrorKind::InvalidData => "incomplete response",
                        _ => "other error",
                    }
                    .to_owned(),
                    Err(_) => "timeout".to_owned(),
                };
                failures.push((failure, took));
            }
            (latencies, failures)
        });
    }

    let (mut exits, mut starts) = (Latencies::default(), Latencies::default());
    let (mut hung, mut not_ready) = (0, 0);
    let started = Instant::now();
    for _ in 0..options.restarts {
        tokio::time::sleep(dwell).await;
        let signalled = Instant::now();
        server.proc.signal(Signal::SIGINT);
        match server.exit_within(signalled, EXIT_CAP).await {
            Some(took) => exits.record(took),
            None => hung += 1,
        }
        let next = Server::spawn(target, &socket, &bench.dir, !target.is_baseline());
        let old = std::mem::replace(&mut server, next);
        // Dropping it reaps it and looks for what it left: not on the clients' threads.
        tokio::task::spawn_blocking(move || drop(old));
        match new_instance(addr, Some(&instance), READY).await {
            Ok(new) => {
                starts.record(server.spawned.elapsed());
                instance = new;
            }
            Err(err) => {
                not_ready += 1;
                bench.report.notes.push(format!("restarts ({name}): {err}"));
            }
        }
        if started.elapsed() > Duration::from_secs(600) {
            let done = exits.len() + hung;
            let note = format!("restarts ({name}): stopped after {done} restarts, 10 minutes");
            bench.report.notes.push(note);
            break;
        }
    }
    tokio::time::sleep(dwell).await;
    stop.store(true, Ordering::Relaxed);
    let (mut all, mut failures) = (Latencies::default(), Vec::<(String, Duration)>::new());
    while let Some(joined) = clients.join_next().await {
        let (latencies, failed) = joined.map_err(io::Error::other)?;
        all.add(&latencies);
        failures.extend(failed);
    }
    drop(server);

    let (restarted, failed) = (exits.len() + hung, failures.len());
    let (total, worst) = (all.len(), all.at(100.0));
    let report = &mut bench.report;
    let text = format!("{failed} of {} in {restarted} restarts", thousands(total));
    let met = failed == 0 && hung == 0 && not_ready == 0;
    let figure = "restarts under load: failed requests";
    report.set(figure, "0", name, text, Some(met));
    let figure = "restarts under load: worst request latency";
    let text = format!("{} (p50 {}, p99 {})", ms(worst), all.ms(50.0), all.ms(99.0));
    let met = worst <= Duration::from_millis(25);
    report.set(figure, "≤ 25 ms", name, text, Some(met));
    let hung_text = format!("; {hung} did not exit in {} s", EXIT_CAP.as_secs());
    let text = format!("{}, {}", exits.ms(50.0), exits.ms(100.0)) + &when(hung > 0, hung_text);
    report.info("restarts: SIGINT → exit (median, max)", name, text);
    let text = format!("{}, {}", starts.ms(50.0), starts.ms(100.0));
    report.info("restarts: spawn → first answer (median, max)", name, text);
    if failed > 0 {
        let slowest = ms(failures.iter().map(|f| f.1).max().unwrap_or_default());
        failures.sort();
        let kind = |run: &[(String, Duration)]| format!("{} × {}", run.len(), run[0].0);
        let kinds: Vec<_> = failures.chunk_by(|a, b| a.0 == b.0).map(kind).collect();
        let kinds = kinds.join(", ");
        let note = format!("failures: {kinds}; the slowest failure took {slowest}");
        report.notes.push(format!("restarts ({name}): {note}"));
    }
    Ok(())
}

/// One server with `n` open reload streams: its memory (scenario `memory`),
/// `--fanout-rounds` reload broadcasts to all (SIGUSR1, `fanout`), then its
/// shutdown (SIGINT, `shutdown`).
pub(crate) async fn streams(bench: &mut Bench, target: Target, n: usize) -> io::Result<()> {
    let (name, n_label) = (target.name(), thousands(n));
    let (server, socket, _) = ready(&bench.dir, target).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = server.rss_kib()?;
    let opening = Instant::now();
    let greeted = || async { Ok(EventStream::greeted(socket.addr).await) };
    let opened = open_all(target, n, greeted).await;
    let mut streams = opened.into_iter().collect::<io::Result<Vec<_>>>()?;
    let opened_in = ms(opening.elapsed());
    let status = http::get(socket.addr, "/auto_refresh/status").await?;
    let counted = json(&status.text(), "open_streams").unwrap_or_default();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let loaded = server.rss_kib()?;
    println!("  streams {name} n={n}: opened in {opened_in}, server counts {counted}, RSS {idle} → {loaded} KiB");
    let (options, report) = (&bench.options, &mut bench.report);
    if options.scenarios.contains(&Scenario::Memory) {
        // Information, not a goal: a developer holds one to three streams (one per
        // browser, shared by its tabs).
        let per_stream = (loaded.saturating_sub(idle)) as f64 / n as f64;
        let text = format!("{per_stream:.1} KiB (RSS {idle} → {loaded} KiB)");
        report.info(&format!("memory per stream, {n_label} streams"), name, text);
    }
    let figure = format!("opening {n_label} streams (demo 128 at a time, baseline 2)");
    report.info(&figure, name, opened_in);

    if options.scenarios.contains(&Scenario::Fanout) {
        // Each round: every stream waits for `reload`, one SIGUSR1, all arrivals.
        let rounds = options.fanout_rounds;
        let (mut lasts, mut medians) = (Latencies::default(), Latencies::default());
        let mut missing = 0;
        for _ in 0..rounds {
            let mut waiting = JoinSet::new();
            for mut stream in streams.drain(..) {
                waiting.spawn(async move {
                    let reload = async {
                        while stream.next_event().await.ok()??.0 != "reload" {}
                        Some(Instant::now())
                    };
                    let got = tokio::time::timeout(Duration::from_secs(5), reload).await;
                    (stream, got.ok().flatten())
                });
            }
            // Let every task reach its read before the signal.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let signalled = Instant::now();
            server.proc.signal(Signal::SIGUSR1);
            let mut arrivals = Latencies::default();
            while let Some(joined) = waiting.join_next().await {
                let (stream, got) = joined.map_err(io::Error::other)?;
                if let Some(at) = got {
                    arrivals.record(at.saturating_duration_since(signalled));
                }
                streams.push(stream);
            }
            missing += n - arrivals.len();
            lasts.record(arrivals.at(100.0));
            medians.record(arrivals.at(50.0));
        }
        let (last, worst, p50) = (lasts.ms(50.0), lasts.ms(100.0), medians.ms(50.0));
        let missing_text = format!("; {missing} arrivals missing after 5 s");
        let missing_text = when(missing > 0, missing_text);
        let text = format!("{last}; worst {worst} (p50 arrival {p50}){missing_text}");
        let figure = format!("fan-out to {n_label} streams: last `reload`");
        let figure = format!("{figure} (median of {rounds} broadcasts; worst)");
        let met = missing == 0 && lasts.at(50.0) <= Duration::from_millis(100);
        let goal = n >= 10_000;
        let (goal_text, met) = (when(goal, "≤ 100 ms"), goal.then_some(met));
        report.set(&figure, goal_text, name, text, met);
    }
    if !options.scenarios.contains(&Scenario::Shutdown) {
        return Ok(());
    }
    // SIGINT with the streams open: when the server exits, and when each stream got
    // `restart` and whether it then ended cleanly.
    let mut reading = JoinSet::new();
    for mut stream in streams {
        let read_to_end = async move {
            let mut restart = None;
            let ended_cleanly = loop {
                match stream.next_event().await {
                    Ok(Some((e, _))) => restart = restart.or((e == "restart").then(Instant::now)),
                    end => break end.is_ok(),
                }
            };
            (restart, ended_cleanly)
        };
        let limit = EXIT_CAP + Duration::from_secs(3);
        reading.spawn(tokio::time::timeout(limit, read_to_end));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    server.proc.signal(Signal::SIGINT);
    let exit = server.exit_within(signalled, EXIT_CAP).await;
    let mut restarts = Latencies::default();
    let (mut clean, mut reset, mut open) = (0, 0, 0);
    while let Some(joined) = reading.join_next().await {
        let Ok((restart, ended_cleanly)) = joined.map_err(io::Error::other)? else {
            open += 1;
            continue;
        };
        if let Some(at) = restart {
            restarts.record(at.saturating_duration_since(signalled));
        }
        clean += u32::from(ended_cleanly);
        reset += u32::from(!ended_cleanly);
    }
    drop(server);
    let got = restarts.len();
    let goal = [(1_000, 50), (10_000, 500)].into_iter().find(|g| g.0 == n);
    let goal = goal.map(|(_, limit)| Duration::from_millis(limit));
    let killed = format!("did not exit in {} s (killed)", EXIT_CAP.as_secs());
    let exit_text = exit.map_or(killed, ms);
    let resets = when(reset > 0, format!(", {reset} reset"));
    let text = format!("{exit_text}; {got}/{n} got `restart`{resets}");
    let goal_text = goal.map_or(String::new(), |g| format!("≤ {} ms", g.as_millis()));
    let met = goal.map(|g| exit.is_some_and(|took| took <= g) && got == n);
    let figure = format!("shutdown with {n_label} streams: SIGINT → exit");
    bench.report.set(&figure, &goal_text, name, text, met);
    let last = format!("{} (p50 {})", restarts.ms(100.0), restarts.ms(50.0));
    let last = if got == 0 { "none".to_owned() } else { last };
    let figure = format!("shutdown with {n_label} streams: last `restart` (from SIGINT)");
    bench.report.info(&figure, name, last);
    println!("  shutdown {name} n={n}: exit {exit_text}, {got} restart events, {clean} clean ends, {reset} resets, {open} open");
    Ok(())
}

/// A connection that stays open, idle, after one small request was answered.
/// Hand-written: it is the connection that is measured, kept as it is.
async fn keep_alive(addr: SocketAddr) -> io::Result<TcpStream> {
    let mut stream = BufReader::new(TcpStream::connect(addr).await?);
    let request = b"GET /auto_refresh/status HTTP/1.1\r\nHost: localhost\r\n\r\n";
    stream.get_mut().write_all(request).await?;
    // The answer is JSON: it ends with its first `}`.
    let mut answer = Vec::new();
    stream.read_until(b'}', &mut answer).await?;
    let answered = answer.ends_with(b"}");
    answered
        .then(|| stream.into_inner())
        .ok_or_else(|| ErrorKind::UnexpectedEof.into())
}

/// Memory per connection that is not a stream, for comparison with the streams:
/// `n` silent connections (accepted, nothing sent: the server waits for a request
/// head), then `n` idle keep-alive connections, each against a fresh server.
pub(crate) async fn memory(bench: &mut Bench, target: Target, n: usize) -> io::Result<()> {
    for (idle, what) in [
        (false, "silent connections (accepted, no request yet)"),
        (true, "idle keep-alive connections (one request answered)"),
    ] {
        let (server, socket, _) = ready(&bench.dir, target).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (before, addr) = (server.rss_kib()?, socket.addr);
        let opened = match idle {
            false => open_all(target, n, || TcpStream::connect(addr)).await,
            true => open_all(target, n, || keep_alive(addr)).await,
        };
        let open = opened.iter().filter(|r| r.is_ok()).count();
        // Silent connections are closed by the header read timeout (10 s): read
        // well before.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = server.rss_kib()?;
        drop((opened, server));
        let per = after.saturating_sub(before) as f64 / open.max(1) as f64;
        let figure = format!("memory per connection, {} {what}", thousands(n));
        let text = format!("{per:.1} KiB (RSS {before} → {after} KiB, {open} open)");
        bench.report.info(&figure, target.name(), text);
    }
    Ok(())
}

/// `wrk` for `seconds` on 64 keep-alive connections, on a blocking thread:
/// requests per second, and the non-2xx answers and socket errors.
async fn wrk(wrk: &Path, url: &str, seconds: u16) -> io::Result<(f64, u64)> {
    let mut command = Command::new(wrk);
    command.args(["-t2", "-c64", &format!("-d{seconds}s"), url]);
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        return Err(io::Error::other(format!("wrk failed: {text}{err}")));
    }
    let (mut requests_per_s, mut errors) = (0.0, 0);
    for line in text.lines().map(str::trim) {
        if let Some(value) = line.strip_prefix("Requests/sec:") {
            requests_per_s = value.trim().parse().unwrap_or(0.0);
        }
        let counted = ["Non-2xx or 3xx responses:", "Socket errors:"];
        let counts = counted.iter().filter_map(|p| line.strip_prefix(p));
        // `connect 0, read 0, write 0, timeout 0`, or one number.
        for count in counts.flat_map(|c| c.split(',')) {
            let count = count.split_whitespace().last();
            errors += count.map_or(0, |n| n.parse().unwrap_or(0));
        }
    }
    Ok((requests_per_s, errors))
}

/// Requests per second for the 20 KiB page with the layer injecting and without,
/// `--rounds` interleaved runs of `--wrk-seconds` each, 64 keep-alive connections.
pub(crate) async fn inject_cost(bench: &mut Bench, target: Target) -> io::Result<()> {
    let Some([wrk_path]) = find_or_skip([WRK]) else {
        let note = "injection cost: wrk is not installed (`apt-get install -y wrk`): skipped";
        bench.report.notes.push(note.into());
        return Ok(());
    };
    let name = target.name();
    let file = ("/static/page.html", "static file");
    let pages = [file, ("/page", "in-memory page")];
    let (pages, compared) = match target.is_baseline() {
        true => (&pages[..], "with ÷ without the layer"),
        false => (&pages[..1], "reload on ÷ off"),
    };
    // Per page, with the script injected and without: the server and its socket,
    // the URL, the rates measured and the errors.
    let mut running = Vec::new();
    for (path, injected) in pages.iter().flat_map(|p| [(p.0, true), (p.0, false)]) {
        let socket = PassedSocket::new();
        // wrk's 64 connections at once must not wait for SYN retransmits, which
        // would measure the backlog, not the layer.
        socket.listen(1024);
        let server = Server::spawn(target, &socket, &bench.dir, injected);
        // With reload off there is no `/auto_refresh/status` to ask: wait for the page.
        let serving = format!("{name} to serve {path}");
        let page = wait::until(&serving, READY, || async {
            let page = http::get(socket.addr, path).await.ok();
            page.filter(|r| r.status == 200)
        })
        .await;
        let (status, len) = (page.status, page.body.len());
        let script = page.text().contains("data-instance=");
        if status != 200 || script != injected || len < PAGE_SIZE {
            let what = format!("{name} {path}: status {status}, {len} bytes");
            let expected = format!("script {script}, expected {injected}");
            return Err(io::Error::other(format!("{what}, {expected}")));
        }
        let url = format!("http://{}{path}", socket.addr);
        wrk(&wrk_path, &url, 1).await?; // Warms up (connections, caches) once.
        running.push(((server, socket), url, Vec::new(), 0));
    }
    for _ in 0..bench.options.rounds {
        for (_, url, rates, errors) in &mut running {
            let (rate, failed) = wrk(&wrk_path, url, bench.options.wrk_seconds).await?;
            rates.push(rate);
            *errors += failed;
        }
    }
    for (&(_, what), runs) in pages.iter().zip(running.chunks(2)) {
        for (_, url, rates, errors) in runs {
            println!("  inject {name} {url}: {rates:.0?} req/s, {errors} errors");
        }
        let [(_, _, with, with_errors), (_, _, without, without_errors)] = runs else {
            continue;
        };
        let (with, without) = (median(with), median(without));
        let ratio = if without > 0.0 { with / without } else { 0.0 };
        let errors = with_errors + without_errors;
        let (with, without) = (thousands(with as usize), thousands(without as usize));
        let errors_text = when(errors > 0, format!(", {errors} errors"));
        let text = format!("{ratio:.3}× ({with} vs {without} req/s{errors_text})");
        let figure = format!("injection cost: 20 KiB {what}, req/s {compared}");
        let met = ratio >= 0.95 && errors == 0;
        bench.report.set(&figure, "≥ 0.95×", name, text, Some(met));
    }
    Ok(())
}

/// Runs `cargo bench --bench inject` (criterion) in `root` and reads its estimates.
pub(crate) async fn injector(bench: &mut Bench, root: &Path) -> io::Result<()> {
    let criterion = bench.dir.join("criterion");
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo.args(["bench", "--bench", "inject", "--", "--noplot"]);
    cargo.current_dir(root).env("CRITERION_HOME", &criterion);
    let status = cargo.status()?;
    if !status.success() {
        let failed = format!("cargo bench --bench inject: {status}");
        return Err(io::Error::other(failed));
    }
    let mut means = Vec::new();
    for (name, label) in [
        ("layer", "through InjectLayer (reload on)"),
        ("layer_off", "through InjectLayer (reload off)"),
        ("no_layer", "the service alone"),
    ] {
        let estimates = criterion.join(format!("inject/{name}/new/estimates.json"));
        let mean = json(&std::fs::read_to_string(&estimates)?, "mean");
        let ns = mean.and_then(|mean| mean.get("point_estimate")?.as_f64());
        let no_mean = || io::Error::other(format!("no mean in {}", estimates.display()));
        let ns = ns.ok_or_else(no_mean)?;
        let gib_per_s = 1.0 / 1024.0 / (ns * 1e-9); // 1 MiB an iteration.
        let figure = format!("injector throughput, 1 MiB in 4 KiB chunks, {label}");
        let text = format!("{gib_per_s:.2} GiB/s ({:.0} µs per MiB)", ns / 1000.0);
        let goal = name == "layer";
        let (goal_text, met) = (when(goal, "≥ 1 GiB/s"), goal.then_some(gib_per_s >= 1.0));
        bench.report.set(&figure, goal_text, "release", text, met);
        means.push(ns);
    }
    // Each iteration also builds the body's frames and collects them: what the
    // service alone costs. The rest is the rewriter's.
    let own = (means[0] - means[2]) / 1000.0;
    let figure = "injector: the rewriter's own cost (reload on − the service alone)";
    let text = format!("{own:.0} µs per MiB");
    bench.report.info(figure, "release", text);
    Ok(())
}
