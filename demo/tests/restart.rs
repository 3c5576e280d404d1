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
    let load = Load::start(
        socket.addr,
        "/",
        "Host: localhost\r\n",
        CLIENTS,
        Duration::from_secs(10),
    );
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

    let whole = tally.ok.iter().filter(|page| page.ends_with("</html>"));
    let whole = whole.count();
    let instances: BTreeSet<&str> = tally.ok.iter().filter_map(|p| instance_of(p)).collect();
    eprintln!(
        "{restarts} restarts, {CLIENTS} clients: {} requests ok, {} failed, worst latency {} ms, {} instances seen",
        tally.ok.len(),
        tally.failures.len(),
        tally.worst.as_millis(),
        instances.len(),
    );
    assert!(
        tally.failures.is_empty(),
        "failed requests: {:?}",
        tally.failures
    );
    assert_eq!(whole, tally.ok.len(), "every page is whole");
    assert!(
        instances.len() > restarts / 2,
        "the clients were served by many of the {} processes, not one: {instances:?}",
        restarts + 1,
    );
}

fn instance_of(page: &str) -> Option<&str> {
    let (_, rest) = page.split_once("data-instance=\"")?;
    Some(rest.split_once('"')?.0)
}
