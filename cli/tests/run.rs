//! `axum-autoreload run` on a real scratch app, through a socket passed as
//! watchexec passes it: a broken build, a good build, a panic in `main`; then as
//! watchexec's `--signal SIGHUP` drives it, one runner for the whole edit loop,
//! each change a SIGHUP: the last good app serves through the build and through a
//! failed one, an unchanged binary is not restarted, a burst of changes builds the
//! last one, and the app does not outlive the runner.

mod support;

use std::time::{Duration, Instant};

use dev_support::assert_contains;
use dev_support::http::{self, Load, Tally};
use std::net::SocketAddr;

use dev_support::process::Proc;
use dev_support::process::{descendants, running};
use dev_support::socket::free_port;
use dev_support::socket::PassedSocket;
use dev_support::sse::EventStream;
use dev_support::tools::{find, WATCHEXEC};
use nix::sys::signal::Signal;
use support::{get, pid_of, Scratch, PAGE_LOAD};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const EVENT: Duration = Duration::from_secs(5);

/// How long a request may wait while the runner builds after the first build.
const BUILD: Duration = Duration::from_secs(300);

/// The headers of a request that is no page load.
const JSON_REQUEST: &str = "Host: localhost\r\nAccept: application/json\r\n";

/// The headers of a page load through DNS rebinding.
const FORGED_HOST: &str = "Host: evil.example\r\nAccept: text/html\r\n";

/// The headers of a page load on the host the tests allow ([`support::ALLOWED_HOST`]).
const ALLOWED_HOST_PAGE_LOAD: &str = "Host: dev.test:8080\r\nAccept: text/html\r\n";

/// The runner on a scratch app whose `main` starts with `body` and fails: the
/// first page load gets a 500 HTML report that holds `report` and links to
/// `src/main.rs` at the line of `at.0`, column `at.1`; a reload stream opens with
/// the overlay, which holds `overlay`.
async fn failure_shown(
    name: &str,
    body: &str,
    report: &[&str],
    at: (&str, usize),
    overlay: &[&str],
) -> (Scratch, PassedSocket, Proc, EventStream) {
    let (scratch, socket, runner, page) = support::start(name, body).await;
    assert_eq!(page.status, 500, "{page:?}");
    let html = page.header("content-type");
    assert!(html.is_some_and(|t| t.starts_with("text/html")), "{page:?}");
    let text = &page.text();
    assert_contains(text, report);
    scratch.assert_links_to_main_rs(text, at.0, at.1);
    let (stream, shown) = EventStream::opened(socket.addr, "/auto_refresh", "overlay").await;
    assert_contains(&shown, overlay);
    (scratch, socket, runner, stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_build_is_shown_to_pages_streams_and_other_requests() {
    // The page load waits in the backlog while cargo fails, then gets the report.
    let broken = "    let _ = undefined_name;\n";
    let report = [
        // The error code links to its explanation.
        r#"<a class="aar-code" href="https://doc.rust-lang.org/error_codes/E0425.html""#,
        "cannot find value `undefined_name` in this scope",
        // The client script, in its overlay mode.
        "data-instance=",
        " data-overlay",
    ];
    let at = ("undefined_name", 13);
    let (_scratch, socket, mut runner, mut stream) =
        failure_shown("scratch-broken", broken, &report, at, &["E0425", "<style>"]).await;

    // Anything but a page load: 503 and one line.
    let api = get(socket.addr, "/api/posts", JSON_REQUEST, BUILD).await;
    assert_eq!(api.status, 503, "{api:?}");
    let plain = Some("text/plain; charset=utf-8");
    assert_eq!(api.header("content-type"), plain);
    let line = "the build failed: 1 error; see the terminal or the browser\n";
    assert_eq!(api.text(), line);

    // An app's own EventSource is held open with a short retry, not refused: a
    // refusal would close it for good.
    let mut events = tokio::net::TcpStream::connect(socket.addr)
        .await
        .expect("connect");
    events
        .write_all(
            b"GET /feed/events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n",
        )
        .await
        .expect("send");
    let mut head = Vec::new();
    let held = tokio::time::timeout(EVENT, async {
        let mut buffer = [0; 1024];
        while !String::from_utf8_lossy(&head).contains("retry: 250\n\n") {
            let read = events.read(&mut buffer).await.expect("read");
            assert!(read > 0, "held open: {}", String::from_utf8_lossy(&head));
            head.extend_from_slice(&buffer[..read]);
        }
    })
    .await;
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(held.is_ok() && head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: text/event-stream"), "{head}");

    // The library's Host check guards the failure server too, with the names
    // allowed in its environment.
    let forged = get(socket.addr, "/", FORGED_HOST, BUILD).await;
    assert_eq!(forged.status, 403, "{forged:?}");
    let allowed = get(socket.addr, "/", ALLOWED_HOST_PAGE_LOAD, BUILD).await;
    assert_eq!(allowed.status, 500, "{allowed:?}");

    // The reload stream's overlay is followed by hello.
    assert_eq!(stream.event(EVENT).await.0, "hello");

    // SIGINT: the stream gets restart and ends, the runner exits at once.
    let stopping = Instant::now();
    runner.signal(Signal::SIGINT);
    assert_eq!(stream.event(Duration::from_secs(1)).await.0, "restart");
    let status = runner.wait_exit(Duration::from_secs(1));
    let status = status.expect("exited within 1 s");
    let exit = stopping.elapsed();
    eprintln!("failure server: SIGINT to exit in {} ms", exit.as_millis());
    assert!(exit < Duration::from_millis(500), "{exit:?}");
    assert_eq!(status.code(), Some(1), "a shown failure exits 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_build_serves_the_app_on_the_passed_socket() {
    let (_scratch, socket, mut runner, page) = support::start("scratch-good", "").await;
    assert_eq!(page.status, 200, "{page:?}");
    let body = &page.text();
    assert_contains(body, &["<h1>scratch ok</h1>", "data-instance="]);
    let report = body.contains(" data-overlay");
    assert!(!report, "the app is no failure report: {body}");
    let app_pid = support::pid_of(&page);
    // The runner's figures reach the app through its channel: the timing line.
    let timing = http::send(
        socket.addr,
        "POST /auto_refresh/timing?reload_ms=5",
        "Host: localhost\r\n",
        "",
    )
    .await;
    assert_eq!(timing.status, 200, "{timing:?}");
    let line = timing.text();
    assert!(
        line.starts_with("rebuilt ")
            && line.contains(" \u{b7} swap ")
            && line.ends_with(" \u{b7} reload 5 ms"),
        "{line}"
    );
    // An app on `AutoReload::new()` answers the host named in its environment.
    let allowed = get(socket.addr, "/", ALLOWED_HOST_PAGE_LOAD, BUILD).await;
    assert_eq!(allowed.status, 200, "{allowed:?}");
    let forged = get(socket.addr, "/", FORGED_HOST, BUILD).await;
    assert_eq!(forged.status, 403, "{forged:?}");

    let stopping = Instant::now();
    runner.signal(Signal::SIGINT);
    let status = runner.wait_exit(Duration::from_secs(5));
    let status = status.expect("exited within 5 s");
    let ms = stopping.elapsed().as_millis();
    eprintln!("app through the runner: SIGINT to exit in {ms} ms");
    let log = runner.log_text();
    assert_eq!(status.code(), Some(0), "the app's own status: {log}");
    let gone = !running(app_pid);
    assert!(gone, "the app is gone");
    let twice = log.contains("again");
    assert!(!twice, "the app got one SIGINT, not two: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_main_shows_its_message_and_location() {
    let panics = "    if std::env::var_os(\"SCRATCH_NEVER_SET\").is_none() {\n        \
                  panic!(\"no <config> & no luck\");\n    }\n";
    // The panic message, escaped.
    let message = "no &lt;config&gt; &amp; no luck";
    let report = [message, "exit status: 101"];
    let (_scratch, _socket, mut runner, _stream) =
        failure_shown("scratch-panic", panics, &report, ("no luck", 9), &[message]).await;
    runner.signal(Signal::SIGINT);
    let exited = runner.wait_exit(Duration::from_secs(1));
    assert!(exited.is_some(), "exited within 1 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_fails_across_restarts_through_the_runner() {
    const RESTARTS: usize = 8;
    const CLIENTS: usize = 3;
    let (scratch, socket, mut runner, page) = support::start("scratch-restarts", "").await;
    assert_eq!(page.status, 200, "{page:?}");
    let load = Load::start(socket.addr, "/", JSON_REQUEST, CLIENTS, BUILD);
    for restart in 0..RESTARTS {
        // Signal a runner whose app serves (as watchexec does after an edit); the
        // next one is started at once, rebuilds (nothing to do) and takes over.
        assert_eq!(get(socket.addr, "/", JSON_REQUEST, BUILD).await.status, 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
        runner.signal(Signal::SIGINT);
        let status = runner.wait_exit(Duration::from_secs(10));
        let clean = status.is_some_and(|status| status.success());
        assert!(clean, "restart {restart}, within 10 s: {status:?}");
        runner = scratch.run(&socket);
    }
    assert_eq!(get(socket.addr, "/", JSON_REQUEST, BUILD).await.status, 200);
    let Tally { ok, failures, .. } = load.stop().await;
    let failed = failures.len();
    eprintln!("{RESTARTS} restarts through the runner, {CLIENTS} clients: {} requests ok, {failed} failed", ok.len());
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert!(ok.len() > RESTARTS, "the clients were served: {}", ok.len());
}

/// The line that breaks the scratch app's build, and the one it replaces.
const GOOD: &str = "let reload = AutoReload::new();";
const BROKEN: &str = "let reload = AutoReload::new(); let _ = undefined_name;";

/// The next event's name, skipping keep-alives; panics after `limit`.
async fn next(stream: &mut EventStream, limit: Duration) -> (String, String) {
    stream.event(limit).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_good_app_serves_through_a_build_and_a_broken_one() {
    let (scratch, socket, runner, page) = support::start("scratch-keep", "").await;
    assert_eq!(page.status, 200, "{page:?}");
    let pid = pid_of(&page);
    // The app runs the runner's link to the binary: cargo's output stays free for
    // the next build (ETXTBSY).
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("the app's executable");
    let exe = exe.display().to_string();
    assert!(exe.contains("/.axum-autoreload/scratch-keep-"), "{exe}");
    let mut stream = EventStream::greeted(socket.addr).await;

    scratch.edit(GOOD, BROKEN);
    runner.signal(Signal::SIGHUP);
    assert_eq!(next(&mut stream, EVENT).await.0, "building");
    // Served by the same app while cargo builds (or has just failed).
    let during = get(socket.addr, "/", PAGE_LOAD, EVENT).await;
    assert_eq!((during.status, pid_of(&during)), (200, pid), "{during:?}");
    let (name, report) = next(&mut stream, BUILD).await;
    assert_eq!(name, "report", "{report}");
    assert!(
        report.contains("E0425") && report.contains("undefined_name"),
        "{report}"
    );

    // After the failure the app still serves pages and stores what it is sent.
    let after = get(socket.addr, "/", PAGE_LOAD, EVENT).await;
    assert_eq!((after.status, pid_of(&after)), (200, pid), "{after:?}");
    let posted = http::send(socket.addr, "POST /notes", "Host: localhost\r\n", "kept").await;
    assert_eq!((posted.status, posted.text().as_str()), (200, "stored\n"));
    let notes = get(socket.addr, "/notes", JSON_REQUEST, EVENT).await;
    assert_eq!(notes.text(), "kept");
    // A tab opened now gets the page's instance, then the report.
    let mut later = EventStream::greeted(socket.addr).await;
    let (name, shown) = next(&mut later, EVENT).await;
    assert!(
        name == "report" && shown.contains("E0425"),
        "{name}: {shown}"
    );

    // The fix (with a new title: the same binary as the running one would only
    // clear the report): one swap, onto a new process, and the report is gone.
    scratch.edit(BROKEN, GOOD);
    scratch.edit("scratch ok", "scratch fixed");
    runner.signal(Signal::SIGHUP);
    assert_eq!(next(&mut stream, EVENT).await.0, "building");
    assert_eq!(next(&mut stream, BUILD).await.0, "restart");
    assert_eq!(next(&mut later, EVENT).await.0, "building");
    assert_eq!(next(&mut later, EVENT).await.0, "restart");
    let fixed = get(socket.addr, "/", PAGE_LOAD, BUILD).await;
    assert_eq!(fixed.status, 200, "{fixed:?}");
    assert_ne!(pid_of(&fixed), pid, "a new process");
    let mut fresh = EventStream::greeted(socket.addr).await;
    assert!(
        fresh
            .next_within(Duration::from_millis(300))
            .await
            .is_none(),
        "no report kept"
    );
    let old_gone = !running(pid);
    assert!(old_gone, "the old app exited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_binary_is_not_restarted() {
    let (_scratch, socket, runner, page) = support::start("scratch-same", "").await;
    let pid = pid_of(&page);
    let mut stream = EventStream::greeted(socket.addr).await;
    for _ in 0..2 {
        runner.signal(Signal::SIGHUP);
        assert_eq!(next(&mut stream, EVENT).await.0, "building");
        assert_eq!(next(&mut stream, BUILD).await.0, "clear");
    }
    let quiet = stream.next_within(Duration::from_millis(300)).await;
    assert!(quiet.is_none(), "no restart, no reload: {quiet:?}");
    let page = get(socket.addr, "/", PAGE_LOAD, EVENT).await;
    assert_eq!(pid_of(&page), pid, "the same process");
    let log = runner.log_text();
    assert!(log.contains("the binary is the one running"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_changes_builds_the_last_one_and_leaves_no_cargo() {
    let (scratch, socket, runner, page) = support::start("scratch-burst", "").await;
    let pid = pid_of(&page);
    let mut stream = EventStream::greeted(socket.addr).await;
    // Two saves a few milliseconds apart: the first build is cancelled.
    scratch.edit("scratch ok", "scratch two");
    runner.signal(Signal::SIGHUP);
    assert_eq!(next(&mut stream, EVENT).await.0, "building");
    scratch.edit("scratch two", "scratch three");
    runner.signal(Signal::SIGHUP);
    assert_eq!(next(&mut stream, EVENT).await.0, "building");
    assert_eq!(next(&mut stream, BUILD).await.0, "restart");
    assert!(
        stream.ends_within(EVENT).await,
        "the old app's stream ended"
    );
    let page = get(socket.addr, "/", PAGE_LOAD, BUILD).await;
    assert!(page.text().contains("scratch three"), "{page:?}");
    assert_ne!(pid_of(&page), pid);
    let mut stream = EventStream::greeted(socket.addr).await;
    assert!(
        stream
            .next_within(Duration::from_millis(300))
            .await
            .is_none(),
        "one swap"
    );
    let log = runner.log_text();
    assert!(log.contains("changed again: building anew"), "{log}");
    // Only the app runs under the runner: the cancelled cargo and its rustc are
    // gone.
    let left: Vec<_> = descendants(runner.pid())
        .into_iter()
        .map(|(process, _)| process.as_raw())
        .filter(|&process| u32::try_from(process).ok() != Some(pid_of(&page)))
        .collect();
    assert!(left.is_empty(), "processes left under the runner: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_ends_when_the_runner_is_killed() {
    let (_scratch, _socket, runner, page) = support::start("scratch-orphan", "").await;
    let pid = pid_of(&page);
    let killed = Instant::now();
    runner.signal(Signal::SIGKILL);
    let gone = dev_support::wait::until("the app to exit", EVENT, || async {
        (!running(pid)).then_some(())
    })
    .await;
    let ms = killed.elapsed().as_millis();
    eprintln!("runner killed with SIGKILL: the app exited {ms} ms later");
    gone
}

#[cfg_attr(missing_watchexec, ignore = "needs watchexec on PATH")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_line_serves_edits_and_ctrl_c_leaves_no_process() {
    let [watchexec] = find([WATCHEXEC]);
    let scratch = Scratch::new("scratch-watched", "");
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut watching = scratch.watch(&watchexec, addr);
    let page = http::first_answer(addr, "/", BUILD, || {
        assert!(
            watching.exited().is_none(),
            "watchexec exited: {}",
            watching.log_text()
        );
    })
    .await;
    assert_eq!(page.status, 200, "{page:?}");
    let pid = pid_of(&page);
    let mut stream = EventStream::greeted(addr).await;

    // A broken save: watchexec's SIGHUP reaches the one runner; the app serves on.
    scratch.edit(GOOD, BROKEN);
    assert_eq!(next(&mut stream, EVENT).await.0, "building");
    assert_eq!(next(&mut stream, BUILD).await.0, "report");
    let during = get(addr, "/", PAGE_LOAD, EVENT).await;
    assert_eq!((during.status, pid_of(&during)), (200, pid), "{during:?}");
    // The fix, with a new title: the swap.
    scratch.edit(BROKEN, GOOD);
    scratch.edit("scratch ok", "scratch watched");
    assert_eq!(next(&mut stream, EVENT).await.0, "building");
    assert_eq!(next(&mut stream, BUILD).await.0, "restart");
    let fixed = get(addr, "/", PAGE_LOAD, BUILD).await;
    assert!(fixed.text().contains("scratch watched"), "{fixed:?}");

    // Ctrl-C: watchexec stops the runner, the runner the app; nothing is left.
    let family: Vec<_> = descendants(watching.pid())
        .into_iter()
        .map(|(process, _)| process)
        .collect();
    let app = pid_of(&fixed);
    assert!(
        family
            .iter()
            .any(|process| process.as_raw().unsigned_abs() == app),
        "the app runs under watchexec"
    );
    watching.signal(Signal::SIGINT);
    let status = watching.wait_exit(Duration::from_secs(15));
    assert!(
        status.is_some(),
        "watchexec exited: {}",
        watching.log_text()
    );
    let left: Vec<_> = family
        .iter()
        .filter(|process| running(process.as_raw().unsigned_abs()))
        .collect();
    assert!(left.is_empty(), "processes left after Ctrl-C: {left:?}");
}
