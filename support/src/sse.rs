//! A server-sent events client (WHATWG HTML, server-sent events): hyper's HTTP/1.1
//! client connection for the request and the chunked body, eventsource-stream for
//! the event stream's format.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures_util::{Stream, StreamExt};
use http_body_util::{BodyDataStream, BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

type Events = Pin<Box<dyn Stream<Item = Result<Event, EventStreamError<hyper::Error>>> + Send>>;

/// An open event stream: the request sent, the response's head read.
pub struct EventStream {
    /// The status line and header fields, lower-cased, one per `\r\n`-ended line
    /// (`http/1.1 200 ok`, `content-type: text/event-stream`, …).
    pub head: String,
    events: Events,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EventStream {{ head: {:?} }}", self.head)
    }
}

impl EventStream {
    /// The reload stream (`GET /auto_refresh`) on a new connection.
    pub async fn open(addr: SocketAddr) -> io::Result<Self> {
        Self::open_path(addr, "/auto_refresh").await
    }

    /// `GET path` with `Accept: text/event-stream` on a new connection.
    async fn open_path(addr: SocketAddr, path: &str) -> io::Result<Self> {
        let mut sender = connect(addr).await?;
        Self::send(&mut sender, path).await
    }

    /// The reload stream asked for on a keep-alive connection after a `GET` of
    /// `path`, whose answer is read whole first.
    pub async fn open_after(addr: SocketAddr, path: &str) -> io::Result<Self> {
        let mut sender = connect(addr).await?;
        let first = sender.send_request(request(path, "*/*")).await;
        let body = first.map_err(io::Error::other)?.into_body();
        body.collect().await.map_err(io::Error::other)?;
        sender.ready().await.map_err(io::Error::other)?;
        Self::send(&mut sender, "/auto_refresh").await
    }

    async fn send(sender: &mut SendRequest<Empty<Bytes>>, path: &str) -> io::Result<Self> {
        let response = sender.send_request(request(path, "text/event-stream"));
        let response = response.await.map_err(io::Error::other)?;
        let mut head = format!("{:?} {}\r\n", response.version(), response.status());
        for (name, value) in response.headers() {
            let value = String::from_utf8_lossy(value.as_bytes());
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let head = head.to_ascii_lowercase();
        let body = BodyDataStream::new(response.into_body());
        let events = body.eventsource().boxed();
        Ok(Self { head, events })
    }

    /// The next event's name (`message` when it has none) and data; `None` at the
    /// end of the stream.
    pub async fn next_event(&mut self) -> io::Result<Option<(String, String)>> {
        match self.events.next().await {
            Some(Ok(event)) => Ok(Some((event.event, event.data))),
            Some(Err(err)) => Err(io::Error::other(err.to_string())),
            None => Ok(None),
        }
    }

    /// Asserts a `200` with `content-type: text/event-stream` and a chunked body.
    pub fn assert_head(&self) {
        let head = &self.head;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        for field in [
            "content-type: text/event-stream",
            "transfer-encoding: chunked",
        ] {
            assert!(head.contains(field), "no {field:?} in {head}");
        }
    }

    /// `GET path` on a new connection, its first event, called `name`, read; the
    /// stream and that event's data.
    pub async fn opened(addr: SocketAddr, path: &str, name: &str) -> (Self, String) {
        let mut stream = Self::open_path(addr, path).await.expect("opening a stream");
        let (first, data) = stream.event(Duration::from_secs(5)).await;
        assert_eq!(first, name, "the first event of {path}");
        (stream, data)
    }

    /// The reload stream on a new connection, its first event (`hello`) read.
    pub async fn greeted(addr: SocketAddr) -> Self {
        Self::opened(addr, "/auto_refresh", "hello").await.0
    }

    /// The next event within `limit`; `None` when none came in time or the stream
    /// ended. Panics on a read error.
    pub async fn next_within(&mut self, limit: Duration) -> Option<(String, String)> {
        let next = tokio::time::timeout(limit, self.next_event()).await.ok()?;
        next.unwrap_or_else(|err| panic!("reading the event stream: {err}"))
    }

    /// The next event; panics when none comes within `limit`.
    pub async fn event(&mut self, limit: Duration) -> (String, String) {
        let next = self.next_within(limit).await;
        next.unwrap_or_else(|| panic!("no event within {limit:?}"))
    }

    /// Reads events until the server ends the stream; whether it did, cleanly,
    /// within `limit`.
    pub async fn ends_within(&mut self, limit: Duration) -> bool {
        let end = async {
            let mut next = self.next_event().await;
            while let Ok(Some(_)) = next {
                next = self.next_event().await;
            }
            next.is_ok()
        };
        tokio::time::timeout(limit, end).await.unwrap_or(false)
    }
}

async fn connect(addr: SocketAddr) -> io::Result<SendRequest<Empty<Bytes>>> {
    let tcp = TcpStream::connect(addr).await?;
    let handshake = hyper::client::conn::http1::handshake(TokioIo::new(tcp));
    let (sender, connection) = handshake.await.map_err(io::Error::other)?;
    tokio::spawn(connection);
    Ok(sender)
}

fn request(path: &str, accept: &str) -> Request<Empty<Bytes>> {
    Request::get(path)
        .header("host", "localhost")
        .header("accept", accept)
        .body(Empty::new())
        .expect("a valid request")
}
