//! The clients' side: requests classified as the load figures count them, and
//! many reload streams opened at once.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dev_support::http;
use dev_support::sse::EventStream;
use futures_util::stream::{self, StreamExt};

/// How long opening N connections may take in all (the baseline's backlog of 1
/// drops connection attempts, which then wait for SYN retransmits).
const OPEN_LIMIT: Duration = Duration::from_secs(120);

/// `GET path` on a fresh connection within `limit`: how long it took, and why it
/// failed if it did.
pub(crate) async fn timed_get(
    addr: SocketAddr,
    path: &str,
    limit: Duration,
) -> (Duration, Result<(), String>) {
    let started = Instant::now();
    let outcome = match tokio::time::timeout(limit, http::get(addr, path)).await {
        Ok(Ok(response)) if response.status == 200 => Ok(()),
        Ok(Ok(response)) => Err(format!("status {}", response.status)),
        Ok(Err(err)) => Err(match err.kind() {
            io::ErrorKind::ConnectionRefused => "connection refused".into(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => "connection reset".into(),
            io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData => {
                "incomplete response".into()
            }
            _ => "other error".into(),
        }),
        Err(_) => Err("timeout".into()),
    };
    (started.elapsed(), outcome)
}

/// Reads `stream` until an event called `name`: when it arrived.
pub(crate) async fn next_named(stream: &mut EventStream, name: &str) -> io::Result<Instant> {
    loop {
        match stream.next_event().await? {
            Some((event, _)) if event == name => return Ok(Instant::now()),
            Some(_) => {}
            None => return Err(io::ErrorKind::UnexpectedEof.into()),
        }
    }
}

/// Opens `n` reload streams, each with its `hello` read; fails unless all opened.
pub(crate) async fn open_streams(
    addr: SocketAddr,
    n: usize,
    concurrency: usize,
) -> io::Result<Vec<EventStream>> {
    let opened = open_all(n, concurrency, || async move {
        let mut stream = EventStream::open(addr).await?;
        next_named(&mut stream, "hello").await?;
        Ok(stream)
    })
    .await;
    let mut streams = Vec::with_capacity(n);
    let mut errors = BTreeMap::<String, usize>::new();
    for result in opened {
        match result {
            Ok(stream) => streams.push(stream),
            Err(err) => *errors.entry(err.to_string()).or_default() += 1,
        }
    }
    if errors.is_empty() {
        Ok(streams)
    } else {
        Err(io::Error::other(format!(
            "{} of {n} streams did not open: {errors:?}",
            n - streams.len()
        )))
    }
}

/// Makes `n` connections with `connect`, at most `concurrency` at a time, each
/// within 20 s and all within [`OPEN_LIMIT`].
pub(crate) async fn open_all<T, F>(
    n: usize,
    concurrency: usize,
    connect: impl Fn() -> F,
) -> Vec<io::Result<T>>
where
    F: Future<Output = io::Result<T>>,
{
    let deadline = Instant::now() + OPEN_LIMIT;
    stream::iter(0..n)
        .map(|_| {
            let connect = connect();
            async move {
                if Instant::now() > deadline {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                tokio::time::timeout(Duration::from_secs(20), connect)
                    .await
                    .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}
