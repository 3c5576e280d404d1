//! Restarts under load: the binary is stopped with SIGINT and started again on one
//! inherited socket, as watchexec does, while clients send requests on fresh
//! connections. No request may fail.

#[path = "demo/support.rs"]
mod demo;

use std::collections::BTreeSet;
use std::time::Duration;

use dev_support::http::{wait_ready, Load};
use dev_support::socket::PassedSocket;
use nix::sys::signal::Signal;

const CLIENTS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_fails_across_restarts() {
    let socket = PassedSocket::new();
    let mut server = demo::start(&socket, &[]).await;
    let limit = Duration::from_secs(10);
    let load = Load::start(socket.addr, "/", "Host: localhost\r\n", CLIENTS, limit);
    // `RESTARTS=50 cargo test --test restart -- --nocapture` runs more and prints
    // the figures.
    let restarts = std::env::var("RESTARTS").ok();
    let restarts = restarts.and_then(|v| v.parse().ok()).unwrap_or(30);
    for restart in 0..restarts {
        // Signal a process that serves: one still starting has no handler yet and
        // dies of the SIGINT (slow starts happen on a loaded machine). Only one
        // process holds the socket at a time, so any answer is the new one's.
        wait_ready(socket.addr, demo::READY).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        server.signal(Signal::SIGINT);
        let restart = format!("restart {restart}");
        demo::assert_exits_cleanly(&mut server, Duration::from_secs(5), &restart);
        // As watchexec does: start the next one on the same socket at once.
        server = demo::spawn_on(&socket, &[]);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let tally = load.stop().await;
    let failures = &tally.failures;
    let whole = tally
        .ok
        .iter()
        .filter(|page| page.ends_with("</html>"))
        .count();
    let instances: BTreeSet<&str> = tally.ok.iter().filter_map(|p| instance_of(p)).collect();
    let (ok, failed, seen) = (tally.ok.len(), failures.len(), instances.len());
    let (worst, processes) = (tally.worst.as_millis(), restarts + 1);
    eprintln!("{restarts} restarts, {CLIENTS} clients: {ok} requests ok, {failed} failed, worst latency {worst} ms, {seen} instances seen");
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert_eq!(whole, ok, "every page is whole");
    // Served by many of the processes, not one.
    assert!(seen > restarts / 2, "{seen} of {processes}: {instances:?}");
}

fn instance_of(page: &str) -> Option<&str> {
    let (_, rest) = page.split_once("data-instance=\"")?;
    Some(rest.split_once('"')?.0)
}
