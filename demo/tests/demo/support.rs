//! Test support for the demo app's feed: posting over raw HTTP/1.1 and reading the
//! feed's event stream (chunked server-sent events) as a browser's EventSource
//! would.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::common::{self, Response};

/// How a post is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// A form, as htmx sends it (`HX-Request: true`).
    Htmx,
    /// A form, as a browser without JavaScript sends it.
    Form,
    /// A JSON object.
    Json,
}

/// `POST /posts` with `username` and `message` (each left out when `None`).
pub async fn post(
    addr: SocketAddr,
    via: Via,
    username: Option<&str>,
    message: Option<&str>,
) -> Response {
    let fields: Vec<(&str, &str)> = [("username", username), ("message", message)]
        .into_iter()
        .filter_map(|(name, value)| value.map(|value| (name, value)))
        .collect();
    let body = match via {
        Via::Htmx | Via::Form => serde_urlencoded::to_string(&fields).expect("form encoding"),
        Via::Json => {
            let object: serde_json::Map<String, serde_json::Value> = fields
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).into()))
                .collect();
            serde_json::Value::Object(object).to_string()
        }
    };
    post_raw(addr, via, &body).await
}

/// `POST /posts` with `body` as it is, typed for `via`.
pub async fn post_raw(addr: SocketAddr, via: Via, body: &str) -> Response {
    let (content_type, extra) = match via {
        Via::Htmx => (
            "application/x-www-form-urlencoded",
            "HX-Request: true\r\nHX-Target: post-form\r\n",
        ),
        Via::Form => ("application/x-www-form-urlencoded", ""),
        Via::Json => ("application/json", ""),
    };
    post_typed(addr, content_type, extra, body).await
}

/// `POST /posts` with any `Content-Type` and extra header lines (each ending in
/// `\r\n`).
pub async fn post_typed(
    addr: SocketAddr,
    content_type: &str,
    extra_headers: &str,
    body: &str,
) -> Response {
    let raw = format!(
        "POST /posts HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Origin: http://localhost\r\nContent-Type: {content_type}\r\n{extra_headers}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    common::request(addr, &raw).await.expect("POST /posts")
}

/// One server-sent event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

/// An open `GET /posts/events`, read as a browser would: chunked transfer coding
/// removed, events split on blank lines, `data` lines joined with `\n`, comments
/// (keep-alives) skipped.
pub struct FeedStream {
    reader: BufReader<TcpStream>,
    /// The body decoded so far and not yet returned as events.
    body: String,
    ended: bool,
}

impl FeedStream {
    /// Open the stream and read the response head; it must be a 200
    /// `text/event-stream`.
    pub async fn open(addr: SocketAddr) -> Self {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(
                b"GET /posts/events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n",
            )
            .await
            .expect("send the request");
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            let read = reader.read_line(&mut line).await.expect("read the head");
            assert!(read > 0, "the stream ended in its head: {head}");
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        assert!(head.starts_with("HTTP/1.1 200"), "feed stream head: {head}");
        let lower = head.to_ascii_lowercase();
        assert!(
            lower.contains("content-type: text/event-stream"),
            "feed stream head: {head}"
        );
        assert!(
            lower.contains("transfer-encoding: chunked"),
            "feed stream head: {head}"
        );
        Self {
            reader,
            body: String::new(),
            ended: false,
        }
    }

    /// The next event, waiting at most `limit`; `None` when the stream ended.
    /// Panics when nothing came within `limit`.
    pub async fn next_event(&mut self, limit: Duration) -> Option<SseEvent> {
        tokio::time::timeout(limit, self.next())
            .await
            .unwrap_or_else(|_| panic!("no feed event within {limit:?}"))
    }

    /// Whether an event arrives within `limit` (`false` also when the stream ends).
    pub async fn event_within(&mut self, limit: Duration) -> Option<SseEvent> {
        tokio::time::timeout(limit, self.next())
            .await
            .ok()
            .flatten()
    }

    /// Whether the stream ends (the last chunk, then the server closes or keeps the
    /// connection) within `limit`, skipping any events.
    pub async fn ends_within(&mut self, limit: Duration) -> bool {
        let ended = async { while self.next().await.is_some() {} };
        tokio::time::timeout(limit, ended).await.is_ok()
    }

    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.body.find("\n\n") {
                let block: String = self.body.drain(..end + 2).collect();
                if let Some(event) = parse_event(&block) {
                    return Some(event);
                }
                continue;
            }
            if self.ended || !self.read_chunk().await {
                self.ended = true;
                return None;
            }
        }
    }

    /// Read one chunk into `body`; `false` at the last chunk or the end of the
    /// connection.
    async fn read_chunk(&mut self) -> bool {
        let mut line = String::new();
        match self.reader.read_line(&mut line).await {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        let size = usize::from_str_radix(line.trim(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size line {line:?}"));
        if size == 0 {
            return false;
        }
        let mut chunk = vec![0; size + 2];
        if self.reader.read_exact(&mut chunk).await.is_err() {
            return false;
        }
        chunk.truncate(size);
        self.body
            .push_str(&String::from_utf8(chunk).expect("UTF-8 events"));
        true
    }
}

fn parse_event(block: &str) -> Option<SseEvent> {
    let mut event = SseEvent::default();
    let mut data: Vec<&str> = Vec::new();
    for line in block.lines() {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => value.clone_into(&mut event.event),
            "data" => data.push(value),
            _ => {}
        }
    }
    if data.is_empty() {
        return None;
    }
    if event.event.is_empty() {
        "message".clone_into(&mut event.event);
    }
    event.data = data.join("\n");
    Some(event)
}

/// Start the demo on a passed socket with its database at `db`, and wait until it
/// answers.
pub async fn start(socket: &common::PassedSocket, db: &std::path::Path) -> common::Server {
    let db = db.to_str().expect("a UTF-8 path");
    let server = socket.spawn(&["--db", db, "--static-dir", static_dir()]);
    common::wait_ready(socket.addr, Duration::from_secs(20)).await;
    server
}

/// The crate's `static/` directory, whatever the test's working directory.
pub fn static_dir() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/static")
}

/// The posts' usernames on the feed page, newest first.
pub async fn usernames_on_page(addr: SocketAddr) -> Vec<String> {
    let page = common::get(addr, "/posts").await.expect("GET /posts");
    assert_eq!(page.status, 200, "GET /posts: {}", page.text());
    let text = page.text();
    text.split("<strong class=\"username\">")
        .skip(1)
        .filter_map(|rest| {
            rest.split_once("</strong>")
                .map(|(name, _)| name.to_owned())
        })
        .collect()
}
