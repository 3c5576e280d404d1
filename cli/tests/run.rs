//! `axum-autoreload run` on a real scratch app, through a socket passed as
//! watchexec passes it: a broken build, a good build, a panic in `main`.

mod support;

use std::time::{Duration, Instant};

use dev_support::assert_contains;
use dev_support::http::{Load, Tally};
use dev_support::process::Proc;
use dev_support::socket::PassedSocket;
use dev_support::sse::EventStream;
use nix::sys::signal::Signal;
use support::{get, Scratch};

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
    let field = |id: &str| -> u128 {
        let (_, rest) = body.split_once(&format!("<p id={id}>")).expect(id);
        let value = rest.split_once('<').expect("the end of the field").0;
        value.parse().unwrap_or_else(|_| panic!("{id}: {body}"))
    };
    let (app_pid, build_ms, spawned_at) = (field("pid"), field("build-ms"), field("spawned-at"));
    assert!(build_ms > 0, "{build_ms}");
    assert!(spawned_at > 1_600_000_000_000, "{spawned_at}");
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
    let gone = !std::path::Path::new(&format!("/proc/{app_pid}")).exists();
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
