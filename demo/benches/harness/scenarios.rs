//! The measured scenarios, each bounded in count and time.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dev_support::socket::PassedSocket;
use dev_support::sse::EventStream;
use dev_support::tools::{find_or_skip, WRK};
use nix::sys::signal::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::client::{next_named, open_all, open_streams, timed_get};
use crate::report::{median, ms, thousands, when, Latencies};
use crate::server::{json, new_instance, Server, Target, Workspace, EXIT_CAP};
use crate::{Bench, Scenario};

/// How long a server may take to answer after it was spawned.
const READY: Duration = Duration::from_secs(20);

/// How many connections the harness opens at once: the baseline keeps the
/// socket's backlog of 1, and more connections at once than it accepts would wait
/// for SYN retransmits (1 s, 3 s, …).
fn concurrency(target: Target) -> usize {
    if target.is_baseline() {
        2
    } else {
        128
    }
}

/// A server of `target` on a new passed socket, answering; its instance.
async fn ready_server(
    work: &Workspace,
    target: Target,
) -> io::Result<(Server, PassedSocket, String)> {
    let socket = PassedSocket::new();
    let server = Server::spawn(target, &socket, work, &[], &[]);
    let instance = new_instance(socket.addr, None, READY).await?;
    Ok((server, socket, instance))
}

/// What the load clients saw: every request's latency, the failures by kind, the
/// slowest failure.
#[derive(Default)]
struct Load {
    latencies: Latencies,
    failures: BTreeMap<String, usize>,
    worst_failure_after: Option<Duration>,
}

/// The binary restarted `--restarts` times on one passed socket (SIGINT, wait for
/// the exit, spawn the next at once, as watchexec does) while `--clients` clients
/// send `GET /`, each request on a fresh connection.
pub(crate) async fn restarts(bench: &mut Bench, target: Target) -> io::Result<()> {
    let (name, options, mut work) = (target.name(), &bench.options, bench.work.clone());
    if options.no_static_watch {
        // A static directory that does not exist: the demo then watches nothing (it
        // warns and goes on); `GET /` does not need it.
        work.static_dir = work.dir.join("no-static-dir");
    }
    let (mut server, socket, mut instance) = ready_server(&work, target).await?;
    let addr = socket.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = JoinSet::new();
    for _ in 0..options.clients {
        let stop = Arc::clone(&stop);
        load.spawn(async move {
            let mut seen = Load::default();
            // Bounded: the controller stops the clients; the count is a backstop.
            for _ in 0..5_000_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let (took, outcome) = timed_get(addr, "/", Duration::from_secs(5)).await;
                seen.latencies.record(took);
                if let Err(failure) = outcome {
                    *seen.failures.entry(failure).or_default() += 1;
                    seen.worst_failure_after = seen.worst_failure_after.max(Some(took));
                }
            }
            seen
        });
    }

    let (mut exits, mut starts) = (Latencies::default(), Latencies::default());
    let (mut hung, mut not_ready) = (0, 0);
    let started = Instant::now();
    for _ in 0..options.restarts {
        tokio::time::sleep(options.dwell()).await;
        let signalled = Instant::now();
        server.signal(Signal::SIGINT);
        match server.exit_within(signalled, EXIT_CAP).await {
            Some(took) => exits.record(took),
            None => hung += 1,
        }
        let next = Server::spawn(target, &socket, &work, &[], &[]);
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
                bench.report.note(format!("restarts ({name}): {err}"));
            }
        }
        if started.elapsed() > Duration::from_secs(600) {
            let done = exits.len() + hung;
            bench.report.note(format!(
                "restarts ({name}): stopped after {done} restarts, 10 minutes"
            ));
            break;
        }
    }
    tokio::time::sleep(options.dwell()).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Load::default();
    while let Some(joined) = load.join_next().await {
        let seen = joined.map_err(io::Error::other)?;
        all.latencies.add(&seen.latencies);
        for (failure, n) in seen.failures {
            *all.failures.entry(failure).or_default() += n;
        }
        all.worst_failure_after = all.worst_failure_after.max(seen.worst_failure_after);
    }
    drop(server);

    let restarted = exits.len() + hung;
    let failed: usize = all.failures.values().sum();
    let (total, worst) = (all.latencies.len(), all.latencies.max());
    let (p50, p99) = (
        all.latencies.percentile(50.0),
        all.latencies.percentile(99.0),
    );
    let label =
        |figure: &str| figure.to_owned() + when(options.no_static_watch, " [no static watcher]");
    let report = &mut bench.report;
    report.set(
        &label("restarts under load: failed requests"),
        "0",
        name,
        format!("{failed} of {} in {restarted} restarts", thousands(total)),
        Some(failed == 0 && hung == 0 && not_ready == 0),
    );
    report.set(
        &label("restarts under load: worst request latency"),
        "≤ 25 ms",
        name,
        format!("{} (p50 {}, p99 {})", ms(worst), ms(p50), ms(p99)),
        Some(worst <= Duration::from_millis(25)),
    );
    let hung_text = format!("; {hung} did not exit in {} s", EXIT_CAP.as_secs());
    let exit_text = exits.median_max() + when(hung > 0, &hung_text);
    report.info(
        &label("restarts: SIGINT → exit (median, max)"),
        name,
        exit_text,
    );
    report.info(
        &label("restarts: spawn → first answer (median, max)"),
        name,
        starts.median_max(),
    );
    if failed > 0 {
        let kinds: Vec<String> = all
            .failures
            .iter()
            .map(|(kind, n)| format!("{n} × {kind}"))
            .collect();
        let slowest = ms(all.worst_failure_after.unwrap_or_default());
        let kinds = kinds.join(", ");
        report.note(format!(
            "restarts ({name}): failures: {kinds}; the slowest failure took {slowest}"
        ));
    }
    let exit_median = ms(exits.percentile(50.0));
    println!("  restarts {name}: {restarted} restarts, {total} requests, {failed} failed, worst {}, exit median {exit_median}", ms(worst));
    Ok(())
}

/// One server with `n` open reload streams: its memory (scenario `memory`),
/// `--fanout-rounds` reload broadcasts to all (SIGUSR1, `fanout`), then its
/// shutdown (SIGINT, `shutdown`).
pub(crate) async fn streams(bench: &mut Bench, target: Target, n: usize) -> io::Result<()> {
    let name = target.name();
    let (server, socket, _) = ready_server(&bench.work, target).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = server.rss_kib()?;
    let opening = Instant::now();
    let mut streams = open_streams(socket.addr, n, concurrency(target)).await?;
    let opened_in = opening.elapsed();
    let status = dev_support::http::get(socket.addr, "/auto_refresh/status").await?;
    let counted = json(&status.text(), "open_streams").unwrap_or_default();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let loaded = server.rss_kib()?;
    let opened_in_ms = ms(opened_in);
    println!("  streams {name} n={n}: opened in {opened_in_ms}, server counts {counted}, RSS {idle} → {loaded} KiB");
    let n_label = thousands(n);
    let (options, report) = (&bench.options, &mut bench.report);
    if options.wants(Scenario::Memory) {
        // Information, not a goal: a developer holds one to three streams (one per
        // browser, shared by its tabs).
        let per_stream = (loaded.saturating_sub(idle)) as f64 / n as f64;
        let text = format!("{per_stream:.1} KiB (RSS {idle} → {loaded} KiB)");
        report.info(&format!("memory per stream, {n_label} streams"), name, text);
    }
    let figure = format!("opening {n_label} streams (demo 128 at a time, baseline 2)");
    report.info(&figure, name, opened_in_ms);

    if options.wants(Scenario::Fanout) {
        // Each round: every stream waits for `reload`, one SIGUSR1, all arrivals.
        let rounds = options.fanout_rounds;
        let (mut lasts, mut medians, mut missing) = (Latencies::default(), Latencies::default(), 0);
        for _ in 0..rounds {
            let mut waiting = JoinSet::new();
            for mut stream in streams.drain(..) {
                waiting.spawn(async move {
                    let reload = next_named(&mut stream, "reload");
                    let got = tokio::time::timeout(Duration::from_secs(5), reload).await;
                    (stream, got.ok().and_then(Result::ok))
                });
            }
            // Let every task reach its read before the signal.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let signalled = Instant::now();
            server.signal(Signal::SIGUSR1);
            let mut arrivals = Latencies::default();
            while let Some(joined) = waiting.join_next().await {
                let (stream, got) = joined.map_err(io::Error::other)?;
                if let Some(at) = got {
                    arrivals.record(at.saturating_duration_since(signalled));
                }
                streams.push(stream);
            }
            missing += n - arrivals.len();
            lasts.record(arrivals.max());
            medians.record(arrivals.percentile(50.0));
        }
        let (last, worst) = (lasts.percentile(50.0), ms(lasts.max()));
        let goal = n >= 10_000;
        let missing_text = format!("; {missing} arrivals missing after 5 s");
        let p50 = ms(medians.percentile(50.0));
        report.set(
            &format!("fan-out to {n_label} streams: last `reload` (median of {rounds} broadcasts; worst)"),
            if goal { "≤ 100 ms" } else { "" },
            name,
            format!("{}; worst {worst} (p50 arrival {p50}){}", ms(last), when(missing > 0, &missing_text)),
            goal.then_some(missing == 0 && last <= Duration::from_millis(100)),
        );
        println!(
            "  fan-out {name} n={n}: last arrival, median of {rounds} broadcasts {}, worst {worst}",
            ms(last)
        );
    }
    if options.wants(Scenario::Shutdown) {
        shutdown(bench, target, server, streams).await?;
    }
    Ok(())
}

/// SIGINT to a server with open `streams`: when it exits, and when each stream
/// got `restart` and ended.
async fn shutdown(
    bench: &mut Bench,
    target: Target,
    server: Server,
    streams: Vec<EventStream>,
) -> io::Result<()> {
    let (name, n) = (target.name(), streams.len());
    let mut reading = JoinSet::new();
    for mut stream in streams {
        reading.spawn(async move {
            // When `restart` came, and whether the stream then ended cleanly.
            let read = async {
                let mut restart = None;
                loop {
                    match stream.next_event().await {
                        Ok(Some((event, _))) if event == "restart" => {
                            restart = restart.or(Some(Instant::now()))
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => return (restart, true),
                        Err(_) => return (restart, false),
                    }
                }
            };
            tokio::time::timeout(EXIT_CAP + Duration::from_secs(3), read).await
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    server.signal(Signal::SIGINT);
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
        *(if ended_cleanly {
            &mut clean
        } else {
            &mut reset
        }) += 1;
    }
    drop(server);
    let got = restarts.len();
    let goal = match n {
        1_000 => Some(Duration::from_millis(50)),
        10_000 => Some(Duration::from_millis(500)),
        _ => None,
    };
    let exit_text = exit.map_or_else(
        || format!("did not exit in {} s (killed)", EXIT_CAP.as_secs()),
        ms,
    );
    let n_label = thousands(n);
    bench.report.set(
        &format!("shutdown with {n_label} streams: SIGINT → exit"),
        &goal.map_or(String::new(), |g| format!("≤ {} ms", g.as_millis())),
        name,
        format!(
            "{exit_text}; {got}/{n} got `restart`{}",
            when(reset > 0, &format!(", {reset} reset"))
        ),
        goal.map(|g| exit.is_some_and(|took| took <= g) && got == n),
    );
    let last = match got {
        0 => "none".to_owned(),
        _ => format!(
            "{} (p50 {})",
            ms(restarts.max()),
            ms(restarts.percentile(50.0))
        ),
    };
    bench.report.info(
        &format!("shutdown with {n_label} streams: last `restart` (from SIGINT)"),
        name,
        last,
    );
    println!("  shutdown {name} n={n}: exit {exit_text}, {got} restart events, {clean} clean ends, {reset} resets, {open} open");
    Ok(())
}

/// Memory per connection that is not a stream, for comparison with the streams:
/// `n` silent connections (accepted, nothing sent: the server waits for a request
/// head), then `n` idle keep-alive connections (one small request answered), each
/// against a fresh server.
pub(crate) async fn memory_breakdown(
    bench: &mut Bench,
    target: Target,
    n: usize,
) -> io::Result<()> {
    let name = target.name();
    for keep_alive in [false, true] {
        let (server, socket, _) = ready_server(&bench.work, target).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = server.rss_kib()?;
        let addr = socket.addr;
        let opened = open_all(n, concurrency(target), || async move {
            let mut stream = TcpStream::connect(addr).await?;
            if keep_alive {
                // Hand-written: the connection must stay open, idle, after its answer.
                stream
                    .write_all(b"GET /auto_refresh/status HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    .await?;
                let (mut got, mut chunk) = (Vec::new(), [0_u8; 512]);
                while !got.ends_with(b"}") {
                    let read = stream.read(&mut chunk).await?;
                    if read == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    got.extend_from_slice(&chunk[..read]);
                }
            }
            Ok(stream)
        })
        .await;
        let open = opened.iter().filter(|r| r.is_ok()).count();
        // Silent connections are closed by the header read timeout (10 s): read
        // well before.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = server.rss_kib()?;
        drop((opened, server));
        let per = after.saturating_sub(before) as f64 / open.max(1) as f64;
        let what = match keep_alive {
            false => "silent connections (accepted, no request yet)",
            true => "idle keep-alive connections (one request answered)",
        };
        let figure = format!("memory per connection, {} {what}", thousands(n));
        bench.report.info(
            &figure,
            name,
            format!("{per:.1} KiB (RSS {before} → {after} KiB, {open} open)"),
        );
        println!("  memory {name} {what}, n={n}: {per:.1} KiB per connection");
    }
    Ok(())
}

/// `wrk` for `seconds` on 64 keep-alive connections, on a blocking thread:
/// requests per second, and the non-2xx answers and socket errors.
async fn wrk(wrk: &Path, url: &str, seconds: usize) -> io::Result<(f64, u64)> {
    let mut command = Command::new(wrk);
    command.args(["-t2", "-c64", &format!("-d{seconds}s"), url]);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .map_err(io::Error::other)??;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        return Err(io::Error::other(format!("wrk failed: {text}{err}")));
    }
    let (mut requests_per_s, mut errors) = (0.0, 0);
    for line in text.lines().map(str::trim) {
        if let Some(value) = line.strip_prefix("Requests/sec:") {
            requests_per_s = value.trim().parse().unwrap_or(0.0);
        } else if let Some(value) = line.strip_prefix("Non-2xx or 3xx responses:") {
            errors += value.trim().parse::<u64>().unwrap_or(0);
        } else if let Some(value) = line.strip_prefix("Socket errors:") {
            let counts = value
                .split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok());
            errors += counts.sum::<u64>();
        }
    }
    Ok((requests_per_s, errors))
}

/// One server of the injection-cost runs: its arguments and environment, the
/// page asked for, and whether the script must be in it. By pairs: with, without.
type Config = (
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
    &'static str,
    bool,
);

const DEMO_CONFIGS: [Config; 2] = [
    (&[], &[("AXUM_AUTORELOAD", "1")], "/static/page.html", true),
    (&[], &[("AXUM_AUTORELOAD", "0")], "/static/page.html", false),
];
const BASELINE_CONFIGS: [Config; 4] = [
    (&["--layer"], &[], "/static/page.html", true),
    (&[], &[], "/static/page.html", false),
    (&["--layer"], &[], "/page", true),
    (&[], &[], "/page", false),
];

/// Requests per second for the 20 KiB page with the layer injecting and without,
/// `--rounds` interleaved runs of `--wrk-seconds` each, 64 keep-alive connections.
pub(crate) async fn inject_cost(bench: &mut Bench, target: Target) -> io::Result<()> {
    let Some([wrk_path]) = find_or_skip([WRK]) else {
        bench.report.note(
            "injection cost: wrk is not installed (`apt-get install -y wrk`): skipped".into(),
        );
        return Ok(());
    };
    let name = target.name();
    let configs: &[Config] = if target.is_baseline() {
        &BASELINE_CONFIGS
    } else {
        &DEMO_CONFIGS
    };
    let mut running = Vec::new();
    for &(args, env, path, injected) in configs {
        let socket = PassedSocket::new();
        // wrk's 64 connections at once must not wait for SYN retransmits, which
        // would measure the backlog, not the layer.
        socket.listen(1024);
        let server = Server::spawn(target, &socket, &bench.work, args, env);
        new_instance(socket.addr, None, READY).await?;
        let page = dev_support::http::get(socket.addr, path).await?;
        let has_script = page.text().contains("data-instance=");
        if page.status != 200 || has_script != injected || page.body.len() < bench.work.page_len {
            let (status, len) = (page.status, page.body.len());
            let what = format!(
                "{name} {args:?} {path}: status {status}, {len} bytes, script {has_script}"
            );
            return Err(io::Error::other(format!("{what}, expected {injected}")));
        }
        let url = format!("http://{}{path}", socket.addr);
        wrk(&wrk_path, &url, 1).await?; // Warms up (connections, caches) once.
        running.push((url, server, socket, Vec::new(), 0));
    }
    for _ in 0..bench.options.rounds {
        for (url, _, _, results, errors) in &mut running {
            let (rate, failed) = wrk(&wrk_path, url, bench.options.wrk_seconds).await?;
            results.push(rate);
            *errors += failed;
        }
    }
    let measured: Vec<(f64, u64)> = running.iter().map(|run| (median(&run.3), run.4)).collect();
    for ((url, _, _, results, errors), (args, ..)) in running.iter().zip(configs) {
        println!("  inject {name} {args:?} {url}: {results:.0?} req/s, {errors} errors");
    }
    drop(running);
    for (pair, runs) in configs.chunks(2).zip(measured.chunks(2)) {
        let [(with, with_errors), (without, without_errors)] = runs else {
            continue;
        };
        let ratio = if *without > 0.0 { with / without } else { 0.0 };
        let what = if pair[0].2 == "/page" {
            "in-memory page"
        } else {
            "static file"
        };
        let compared = if target.is_baseline() {
            "with ÷ without the layer"
        } else {
            "reload on ÷ off"
        };
        let errors = with_errors + without_errors;
        let (with, without) = (thousands(*with as usize), thousands(*without as usize));
        bench.report.set(
            &format!("injection cost: 20 KiB {what}, req/s {compared}"),
            "≥ 0.95×",
            name,
            format!(
                "{ratio:.3}× ({with} vs {without} req/s{})",
                when(errors > 0, &format!(", {errors} errors"))
            ),
            Some(ratio >= 0.95 && errors == 0),
        );
    }
    Ok(())
}

/// Runs `cargo bench --bench inject` (criterion) in `root` and reads its estimates.
pub(crate) fn injector(bench: &mut Bench, root: &Path, criterion_home: &Path) -> io::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["bench", "--bench", "inject", "--", "--noplot"])
        .current_dir(root);
    let status = command.env("CRITERION_HOME", criterion_home).status()?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "cargo bench --bench inject: {status}"
        )));
    }
    for (name, label) in [
        ("layer", "through InjectLayer (reload on)"),
        ("layer_off", "through InjectLayer (reload off)"),
        ("no_layer", "the service alone"),
    ] {
        let estimates = criterion_home.join(format!("inject/{name}/new/estimates.json"));
        let ns = json(&std::fs::read_to_string(&estimates)?, "mean")
            .and_then(|mean| mean.get("point_estimate")?.as_f64())
            .ok_or_else(|| io::Error::other(format!("no mean in {}", estimates.display())))?;
        let gib_per_s = 1.0 / 1024.0 / (ns * 1e-9); // 1 MiB an iteration.
        let goal = name == "layer";
        bench.report.set(
            &format!("injector throughput, 1 MiB in 4 KiB chunks, {label}"),
            if goal { "≥ 1 GiB/s" } else { "" },
            "release",
            format!("{gib_per_s:.2} GiB/s ({:.0} µs per MiB)", ns / 1000.0),
            goal.then_some(gib_per_s >= 1.0),
        );
    }
    Ok(())
}
