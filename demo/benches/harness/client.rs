//! A plain HTTP/1.1 client over real TCP: one request per fresh connection, and
//! reload streams (server-sent events) read as raw bytes.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use memchr::memmem;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::wire::parse;
pub(crate) use crate::wire::Response;

/// Why a request failed, as the load figures count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Failure {
    Refused,
    Reset,
    /// The connection ended before the whole response.
    Incomplete,
    Status(u16),
    Timeout,
    Other,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused => f.write_str("connection refused"),
            Self::Reset => f.write_str("connection reset"),
            Self::Incomplete => f.write_str("incomplete response"),
            Self::Status(code) => write!(f, "status {code}"),
            Self::Timeout => f.write_str("timeout"),
            Self::Other => f.write_str("other error"),
        }
    }
}

impl From<&io::Error> for Failure {
    fn from(err: &io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::ConnectionRefused => Self::Refused,
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => Self::Reset,
            io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData => Self::Incomplete,
            io::ErrorKind::TimedOut => Self::Timeout,
            _ => Self::Other,
        }
    }
}

/// `GET path` on a fresh connection with `Connection: close`, read to the end; the
/// body must be complete (Content-Length or the last chunk).
pub(crate) async fn get(addr: SocketAddr, path: &str) -> io::Result<Response> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut bytes = Vec::with_capacity(4096);
    stream.read_to_end(&mut bytes).await?;
    parse(&bytes, false)
}

/// One request with a time limit, classified.
pub(crate) async fn timed_get(
    addr: SocketAddr,
    path: &str,
    limit: Duration,
) -> (Duration, Result<(), Failure>) {
    let started = Instant::now();
    let outcome = match tokio::time::timeout(limit, get(addr, path)).await {
        Ok(Ok(response)) if response.status == 200 => Ok(()),
        Ok(Ok(response)) => Err(Failure::Status(response.status)),
        Ok(Err(err)) => Err(Failure::from(&err)),
        Err(_) => Err(Failure::Timeout),
    };
    (started.elapsed(), outcome)
}

/// An open reload stream whose `hello` has arrived.
pub(crate) struct EventStream {
    stream: TcpStream,
    /// Bytes read and not yet matched.
    buf: Vec<u8>,
}

/// How a stream ended, after a shutdown.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StreamEnd {
    /// When the `restart` event arrived, if it did.
    pub(crate) restart: Option<Instant>,
    /// When the connection ended, and whether cleanly (EOF rather than a reset).
    pub(crate) ended: Option<(Instant, bool)>,
}

impl EventStream {
    /// Open `GET /auto_refresh` and wait for its `hello`.
    pub(crate) async fn open(addr: SocketAddr) -> io::Result<Self> {
        let mut stream = TcpStream::connect(addr).await?;
        stream
            .write_all(
                b"GET /auto_refresh HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n",
            )
            .await?;
        let mut this = Self {
            stream,
            buf: Vec::with_capacity(512),
        };
        this.wait_event(b"hello").await?;
        Ok(this)
    }

    /// Read until `event: <name>` has arrived; returns when.
    pub(crate) async fn wait_event(&mut self, name: &[u8]) -> io::Result<Instant> {
        let mut needle = b"event: ".to_vec();
        needle.extend_from_slice(name);
        let mut chunk = [0_u8; 1024];
        loop {
            if let Some(at) = memmem::find(&self.buf, &needle) {
                self.buf.drain(..at + needle.len());
                return Ok(Instant::now());
            }
            // Keep only what could start a match.
            let keep = needle.len().min(self.buf.len());
            self.buf.drain(..self.buf.len() - keep);
            let read = self.stream.read(&mut chunk).await?;
            if read == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..read]);
        }
    }

    /// Read until the connection ends, noting when `restart` arrived.
    pub(crate) async fn read_to_end(mut self) -> StreamEnd {
        let mut end = StreamEnd {
            restart: None,
            ended: None,
        };
        let needle: &[u8] = b"event: restart";
        let mut chunk = [0_u8; 1024];
        loop {
            if end.restart.is_none() && memmem::find(&self.buf, needle).is_some() {
                end.restart = Some(Instant::now());
            }
            let keep = needle.len().min(self.buf.len());
            self.buf.drain(..self.buf.len() - keep);
            match self.stream.read(&mut chunk).await {
                Ok(0) => {
                    end.ended = Some((Instant::now(), true));
                    return end;
                }
                Ok(read) => self.buf.extend_from_slice(&chunk[..read]),
                Err(_) => {
                    end.ended = Some((Instant::now(), false));
                    return end;
                }
            }
        }
    }
}
