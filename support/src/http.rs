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
    // How the response ends, once its head is in: parsing copies the body, so the
    // bytes are parsed once they may be whole, not after every read.
    let mut framing = None;
    loop {
        bytes.reserve(8192);
        if stream.read_buf(&mut bytes).await? == 0 {
            return parse(&bytes, to_head);
        }
        if framing.is_none() {
            let head = memmem::find(&bytes, b"\r\n\r\n").map(|at| &bytes[..at + 4]);
            framing = head.map(|head| Framing::of(head, to_head));
        }
        let whole = match framing {
            Some(Framing::Length(length)) => bytes.len() >= length,
            Some(Framing::Chunked) => bytes.ends_with(b"0\r\n\r\n"),
            None | Some(Framing::ToEnd) => false,
        };
        if let (true, Ok(response)) = (whole, parse(&bytes, to_head)) {
            return Ok(response);
        }
    }
}

/// How a response's body ends, from its head.
#[derive(Debug, Clone, Copy)]
enum Framing {
    /// After this many bytes: the head's, and `Content-Length`'s.
    Length(usize),
    /// With the last chunk.
    Chunked,
    /// At the end of the connection.
    ToEnd,
}

impl Framing {
    /// The framing of the response whose head (blank line included) is `head`.
    fn of(head: &[u8], to_head: bool) -> Self {
        let Ok(response) = parse(head, true) else {
            return Self::ToEnd;
        };
        let length = response
            .header("content-length")
            .and_then(|l| l.parse::<usize>().ok());
        match (to_head, is_chunked(&response), length) {
            (true, _, _) => Self::Length(head.len()),
            (false, true, _) => Self::Chunked,
            (false, false, Some(length)) => Self::Length(head.len() + length),
            (false, false, None) => Self::ToEnd,
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

    /// Each case's response goes out in pieces, 20 ms apart; the connection then
    /// stays open but for the unframed body, so a framed one must end on its own.
    #[tokio::test]
    async fn a_response_ends_with_its_framing() {
        const GET: &str = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let cases: [(&str, &[&[u8]], &str); 4] = [
            (
                "sized, the head split",
                &[
                    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r",
                    b"\nhel",
                    b"lo",
                ],
                GET,
            ),
            (
                "chunked",
                &[
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
                    b"lo\r\n0\r\n",
                    b"\r\n",
                ],
                GET,
            ),
            (
                "HEAD",
                &[b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"],
                "HEAD / HTTP/1.1\r\n\r\n",
            ),
            ("unframed", &[b"HTTP/1.0 200 OK\r\n\r\nhel", b"lo"], GET),
        ];
        for (what, pieces, raw) in cases {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("address");
            let server = tokio::spawn(async move {
                let (mut stream, _) = listener.accept().await.expect("accept");
                let _ = stream.read(&mut [0; 1024]).await;
                for piece in pieces {
                    stream.write_all(piece).await.expect("write");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                if what != "unframed" {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
            });
            let response = tokio::time::timeout(Duration::from_secs(5), request(addr, raw)).await;
            let response = response.expect(what).expect(what);
            let body = if what == "HEAD" { "" } else { "hello" };
            assert_eq!(
                (response.status, response.text().as_str()),
                (200, body),
                "{what}"
            );
            server.abort();
        }
    }
}
