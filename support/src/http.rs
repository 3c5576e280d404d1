//! A plain HTTP/1.1 client over real TCP: one request on a fresh connection, the
//! response read off the wire as it is (RFC 9112: status line, header fields, a
//! chunked or sized body).
//!
//! Hand-written on purpose: the tests pin the bytes the server sends (framing,
//! header fields, what a malformed request gets), which a client library would
//! normalise or refuse.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use memchr::memmem;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// A response read off the wire, its body complete.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// The status line and header fields, as sent.
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header field called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `GET path` with `Host: localhost` and `Connection: close`.
pub async fn get(addr: SocketAddr, path: &str) -> io::Result<Response> {
    get_with(addr, path, "Host: localhost\r\n").await
}

/// `GET path` with `Connection: close` and these header lines (each ending in
/// `\r\n`, `Host` among them).
pub async fn get_with(addr: SocketAddr, path: &str, headers: &str) -> io::Result<Response> {
    let raw = format!("GET {path} HTTP/1.1\r\nConnection: close\r\n{headers}\r\n");
    request(addr, &raw).await
}

/// Sends the raw request bytes on a fresh connection and reads the response: to
/// the end of its framed body (some servers, chromedriver among them, keep the
/// connection open), or else to the end of the connection.
pub async fn request(addr: SocketAddr, raw: &str) -> io::Result<Response> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(raw.as_bytes()).await?;
    let to_head = raw.starts_with("HEAD ");
    let mut bytes = Vec::with_capacity(4096);
    let mut chunk = [0_u8; 8192];
    // Where the body starts and how it ends, once the head is in.
    let mut framing = None;
    loop {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return parse(&bytes, to_head);
        }
        // The end of the head may straddle two reads.
        let searched = bytes.len().saturating_sub(3);
        bytes.extend_from_slice(&chunk[..read]);
        if framing.is_none() {
            if let Some(at) = memmem::find(&bytes[searched..], b"\r\n\r\n") {
                framing = Some(Framing::of(
                    &bytes[..searched + at],
                    searched + at + 4,
                    to_head,
                ));
            }
        }
        let complete = match framing {
            None | Some(Framing::ToEnd) => false,
            Some(Framing::Now) => true,
            Some(Framing::Length(end)) => bytes.len() >= end,
            Some(Framing::Chunked) => bytes.ends_with(b"0\r\n\r\n"),
        };
        if complete {
            if let Ok(response) = parse(&bytes, to_head) {
                return Ok(response);
            }
        }
    }
}

/// How a response's body ends, from its head.
#[derive(Debug, Clone, Copy)]
enum Framing {
    /// Complete with the head: the answer to `HEAD`, or a `Content-Length` that
    /// is no number (the body is what came with the head).
    Now,
    /// At this offset in the bytes read (the head's length plus `Content-Length`).
    Length(usize),
    /// With the last chunk.
    Chunked,
    /// At the end of the connection.
    ToEnd,
}

impl Framing {
    /// The framing of a response whose head is `head` (without the blank line) and
    /// whose body starts at offset `body`.
    fn of(head: &[u8], body: usize, to_head: bool) -> Self {
        let head = String::from_utf8_lossy(head).into_owned();
        let status = head.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok());
        let Some(status) = status else {
            return Self::ToEnd;
        };
        let response = Response {
            status,
            head,
            body: Vec::new(),
        };
        let length = response.header("content-length");
        if to_head {
            Self::Now
        } else if is_chunked(&response) {
            Self::Chunked
        } else if let Some(length) = length {
            length
                .parse::<usize>()
                .map_or(Self::Now, |len| Self::Length(body + len))
        } else {
            Self::ToEnd
        }
    }
}

/// Asks `GET path` until a response comes (of any status) and returns it; a
/// refused connection is retried (the socket may not exist yet) and a request may
/// wait in a socket's backlog while cargo builds. `check` runs at least every
/// second while it waits (to fail early when the process that builds has failed);
/// progress is printed every minute. Panics after `limit`.
pub async fn first_answer(
    addr: SocketAddr,
    path: &str,
    limit: Duration,
    mut check: impl FnMut(),
) -> Response {
    let started = Instant::now();
    let mut minutes = 0;
    let mut attempt = Box::pin(get(addr, path));
    loop {
        match tokio::time::timeout(Duration::from_secs(1), &mut attempt).await {
            Ok(Ok(response)) => return response,
            Ok(Err(_)) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                attempt = Box::pin(get(addr, path));
            }
            Err(_) if started.elapsed().as_secs() / 60 > minutes => {
                minutes += 1;
                eprintln!("still waiting for GET {path} after {minutes} min (cargo is building)");
            }
            Err(_) => {}
        }
        check();
        let waited = started.elapsed();
        assert!(waited < limit, "GET {path} did not answer within {limit:?}");
    }
}

/// `line` (`POST /path`) with these header lines (each ending in `\r\n`),
/// `Connection: close` and `body` with its `Content-Length`, on a fresh connection.
pub async fn send(addr: SocketAddr, line: &str, headers: &str, body: &str) -> Response {
    let length = body.len();
    let raw = format!(
        "{line} HTTP/1.1\r\n{headers}Connection: close\r\nContent-Length: {length}\r\n\r\n{body}"
    );
    let response = request(addr, &raw).await;
    response.unwrap_or_else(|err| panic!("{line}: {err}"))
}

/// Waits until `GET /` answers 200, at most `limit`.
pub async fn wait_ready(addr: SocketAddr, limit: Duration) {
    crate::wait::until(&format!("GET / on {addr} to answer 200"), limit, || async {
        let response = get(addr, "/").await.ok()?;
        (response.status == 200).then_some(())
    })
    .await;
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn is_chunked(response: &Response) -> bool {
    let coding = response.header("transfer-encoding");
    coding.is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
}

/// Parses a whole response; `Err` when the head or the framed body is incomplete.
/// The answer to a `HEAD` request (`to_head`) has no body, whatever its header
/// fields say.
fn parse(bytes: &[u8], to_head: bool) -> io::Result<Response> {
    let split = memmem::find(bytes, b"\r\n\r\n").ok_or_else(|| invalid("no end of head"))?;
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok());
    let status = status.ok_or_else(|| invalid("no status"))?;
    let mut response = Response {
        status,
        head,
        body: Vec::new(),
    };
    let raw = &bytes[split + 4..];
    let length = response.header("content-length");
    let length = length.and_then(|v| v.parse::<usize>().ok());
    response.body = if to_head {
        Vec::new()
    } else if is_chunked(&response) {
        dechunk(raw).ok_or_else(|| invalid("incomplete chunked body"))?
    } else if let Some(len) = length {
        let body = raw.get(..len);
        body.ok_or_else(|| invalid("body shorter than Content-Length"))?
            .to_vec()
    } else {
        raw.to_vec()
    };
    Ok(response)
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = memmem::find(raw, b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&raw[..line_end]).ok()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

/// Clients that each ask `GET path` (with these header lines) on fresh
/// connections, one request after another, until [`Load::stop`]: the traffic a
/// server restarts under.
#[derive(Debug)]
pub struct Load {
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
    tasks: Vec<JoinHandle<()>>,
}

/// What the clients of a [`Load`] got.
#[derive(Debug, Default)]
pub struct Tally {
    /// The bodies of the answers with status 200.
    pub ok: Vec<String>,
    /// Other answers, errors, and requests with no answer within the limit.
    pub failures: Vec<String>,
    /// The longest wait for an answer.
    pub worst: Duration,
}

impl Load {
    /// Starts `clients` clients; each request may wait up to `limit`.
    pub fn start(
        addr: SocketAddr,
        path: &str,
        headers: &str,
        clients: usize,
        limit: Duration,
    ) -> Self {
        let (stop, tally) = (Arc::<AtomicBool>::default(), Arc::<Mutex<Tally>>::default());
        let client = |_| {
            let (stop, tally) = (Arc::clone(&stop), Arc::clone(&tally));
            let (path, headers) = (path.to_owned(), headers.to_owned());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let answer = tokio::time::timeout(limit, get_with(addr, &path, &headers)).await;
                    let mut tally = tally.lock().expect("the tally");
                    tally.worst = tally.worst.max(started.elapsed());
                    match answer {
                        Ok(Ok(ok)) if ok.status == 200 => tally.ok.push(ok.text()),
                        Ok(Ok(other)) => {
                            let failure = format!("{}: {}", other.status, other.text());
                            tally.failures.push(failure);
                        }
                        Ok(Err(err)) => tally.failures.push(err.to_string()),
                        Err(_) => tally.failures.push(format!("no answer within {limit:?}")),
                    }
                }
            })
        };
        let tasks = (0..clients).map(client).collect();
        Self { stop, tally, tasks }
    }

    /// Stops the clients after their requests in flight; what they all got.
    pub async fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.tasks {
            client.await.expect("a client of the load");
        }
        std::mem::take(&mut *self.tally.lock().expect("the tally"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that answers one request with `pieces`, one write each, and then
    /// holds the connection open (`hold`) or closes it; its address.
    async fn answering(pieces: &'static [&'static [u8]], hold: bool) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut request = Vec::new();
            while memmem::find(&request, b"\r\n\r\n").is_none() {
                let mut buf = [0; 1024];
                let n = stream.read(&mut buf).await.expect("read");
                request.extend_from_slice(&buf[..n]);
            }
            for piece in pieces {
                stream.write_all(piece).await.expect("write");
                stream.flush().await.expect("flush");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if hold {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
        });
        addr
    }

    async fn ask(addr: SocketAddr, raw: &str) -> Response {
        let response = tokio::time::timeout(Duration::from_secs(5), request(addr, raw)).await;
        response
            .expect("framed: no need to wait for the end of the connection")
            .expect("read")
    }

    const GET: &str = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    #[tokio::test]
    async fn a_sized_body_ends_at_its_length_with_the_head_split_anywhere() {
        let pieces: &[&[u8]] = &[
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r",
            b"\nhello",
            b" you",
        ];
        let response = ask(answering(pieces, true).await, GET).await;
        assert_eq!(
            (response.status, response.text().as_str()),
            (200, "hello you")
        );
        assert_eq!(response.header("content-length"), Some("9"));
    }

    #[tokio::test]
    async fn a_chunked_body_ends_with_its_last_chunk() {
        let pieces: &[&[u8]] = &[
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
            b"lo\r\n0\r\n",
            b"\r\n",
        ];
        let response = ask(answering(pieces, true).await, GET).await;
        assert_eq!(response.text(), "hello");
    }

    #[tokio::test]
    async fn the_answer_to_head_has_no_body() {
        let pieces: &[&[u8]] = &[b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"];
        let response = ask(answering(pieces, true).await, "HEAD / HTTP/1.1\r\n\r\n").await;
        assert!(response.status == 200 && response.body.is_empty());
    }

    #[tokio::test]
    async fn an_unframed_body_runs_to_the_end_of_the_connection() {
        let pieces: &[&[u8]] = &[b"HTTP/1.0 200 OK\r\n\r\nall ", b"of ", b"it"];
        let response = ask(answering(pieces, false).await, GET).await;
        assert_eq!(response.text(), "all of it");
    }
}
