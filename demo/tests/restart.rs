//! Restarts under load: the binary is stopped with SIGINT and started again on one
//! inherited socket, as watchexec does, while clients send requests on fresh
//! connections. No request may fail.

#[path = "demo/support.rs"]
mod demo;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dev_support::http::{get, wait_ready};
use dev_support::socket::PassedSocket;
use nix::sys::signal::Signal;

/// How many restarts; `RESTARTS=50 cargo test --test restart -- --nocapture` runs more
/// and prints the figures.
fn restarts() -> usize {
    let restarts = std::env::var("RESTARTS").ok();
    restarts.and_then(|v| v.parse().ok()).unwrap_or(30)
}
const CLIENTS: usize = 4;

#[derive(Default)]
struct Tally {
    ok: usize,
    failures: Vec<String>,
    worst: Duration,
    instances: BTreeSet<String>,
}

/// Sends `GET /` on fresh connections until `stop`, tallying the answers.
async fn client(addr: std::net::SocketAddr, stop: Arc<AtomicBool>) -> Tally {
    let mut tally = Tally::default();
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let result = tokio::time::timeout(Duration::from_secs(10), get(addr, "/")).await;
        tally.worst = tally.worst.max(started.elapsed());
        match result {
            Ok(Ok(page)) if page.status == 200 && page.text().ends_with("</html>") => {
                tally.ok += 1;
                tally.instances.extend(instance_of(&page.text()));
            }
            Ok(Ok(page)) => tally
                .failures
                .push(format!("{}: {}", page.status, page.text())),
            Ok(Err(err)) => tally.failures.push(err.to_string()),
            Err(_) => tally.failures.push("no answer in 10 s".to_owned()),
        }
    }
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_fails_across_restarts() {
    let socket = PassedSocket::new();
    let mut server = demo::start(&socket, &[]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(client(socket.addr, Arc::clone(&stop))))
        .collect();

    let restarts = restarts();
    for restart in 0..restarts {
        // Signal a process that serves: one still starting has no handler yet and
        // dies of the SIGINT (slow starts happen on a loaded machine). Only one
        // process holds the socket at a time, so any answer is the new one's.
        wait_ready(socket.addr, demo::READY).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        server.signal(Signal::SIGINT);
        let status = server.wait_exit(Duration::from_secs(5));
        let status = status.unwrap_or_else(|| panic!("restart {restart}: no exit within 5 s"));
        assert!(
            status.success(),
            "restart {restart}: exit status {status:?}"
        );
        // As watchexec does: start the next one on the same socket at once.
        server = demo::spawn_on(&socket, &[]);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);

    let mut total = Tally::default();
    for client in clients {
        let tally = client.await.expect("client task");
        total.ok += tally.ok;
        total.failures.extend(tally.failures);
        total.worst = total.worst.max(tally.worst);
        total.instances.extend(tally.instances);
    }
    eprintln!(
        "{restarts} restarts, {CLIENTS} clients: {} requests ok, {} failed, worst latency {} ms, {} instances seen",
        total.ok,
        total.failures.len(),
        total.worst.as_millis(),
        total.instances.len(),
    );
    assert!(
        total.failures.is_empty(),
        "failed requests: {:?}",
        total.failures
    );
    assert!(
        total.instances.len() > restarts / 2,
        "the clients were served by many of the {} processes, not one: {:?}",
        restarts + 1,
        total.instances
    );
}

fn instance_of(page: &str) -> Option<String> {
    let (_, rest) = page.split_once("data-instance=\"")?;
    Some(rest.split_once('"')?.0.to_owned())
}
