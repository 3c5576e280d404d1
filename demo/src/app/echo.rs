//! The WebSocket echo at `/ws` and the page `/echo` that tries it.
//!
//! Text and binary messages come back unchanged; tungstenite answers Ping with Pong
//! and Close with Close. A message over 64 KiB closes the socket with 1009
//! (message too big); the server's shutdown closes every socket with 1012 (service
//! restart, RFC 6455 §7.4 and the IANA registry), and the page reconnects.

use std::time::Duration;

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum_autoreload::ShutdownSignal;
use maud::{html, Markup};

use super::pages;

/// The largest message echoed, in bytes; a larger one closes the socket with 1009.
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// What tungstenite reads at most, in bytes per message and per frame. Messages
/// between [`MAX_MESSAGE_BYTES`] and this are read whole and refused with a clean
/// close; larger ones stop the read half-way and get a 1009 close as well, but
/// the rest of the message is then left unread.
const READ_LIMIT_BYTES: usize = 1024 * 1024;
/// How long a socket the server closes waits for the client's Close.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// `GET /ws`: upgrade to a WebSocket that echoes every message, until the server
/// shuts down (which waits for it until its drain deadline).
pub(crate) async fn upgrade(shutdown: ShutdownSignal, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .max_message_size(READ_LIMIT_BYTES)
        .max_frame_size(READ_LIMIT_BYTES)
        .on_failed_upgrade(|err| tracing::debug!("WebSocket upgrade failed: {err}"))
        .on_upgrade(move |socket| echo_until_closed(socket, shutdown))
}

async fn echo_until_closed(mut socket: WebSocket, shutdown: ShutdownSignal) {
    loop {
        let received = tokio::select! {
            biased;
            () = shutdown.triggered() => {
                return close(socket, close_code::RESTART, "server restarting").await;
            }
            received = socket.recv() => received,
        };
        let message = match received {
            None => return,
            Some(Ok(message)) => message,
            Some(Err(err)) => {
                let err = err.to_string();
                tracing::debug!("WebSocket: {err}");
                // tungstenite's capacity error: "Space limit exceeded: Message too long".
                if err.contains("too long") {
                    close(socket, close_code::SIZE, "message over 64 KiB").await;
                }
                return;
            }
        };
        match message {
            Message::Text(_) | Message::Binary(_) => {
                let len = match &message {
                    Message::Text(text) => text.len(),
                    Message::Binary(bytes) => bytes.len(),
                    _ => 0,
                };
                if len > MAX_MESSAGE_BYTES {
                    return close(socket, close_code::SIZE, "message over 64 KiB").await;
                }
                if socket.send(message).await.is_err() {
                    return;
                }
            }
            // tungstenite queues the Pong for a Ping, and the reply to a Close, and
            // sends them on the next read; after a Close that read ends the loop.
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) => {}
        }
    }
}

/// Send a Close with `code`, then wait a moment for the client's Close.
async fn close(mut socket: WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let drain = async { while let Some(Ok(_)) = socket.recv().await {} };
    if tokio::time::timeout(CLOSE_WAIT, drain).await.is_err() {
        tracing::debug!("WebSocket: no Close from the client within {CLOSE_WAIT:?}");
    }
}

/// `GET /echo`: a page to try the echo; `static/echo.js` connects and reconnects.
pub(crate) async fn page() -> Markup {
    let title = "WebSocket echo";
    pages::layout(
        title,
        html! { script defer src="/static/echo.js" {} },
        html! {
            (pages::header(title))
            main {
                p {
                    "Messages go to " code { "/ws" } " and come back unchanged, up to 64 KiB. "
                    "Restart the server: the socket closes with 1012 and reconnects by itself."
                }
                p { "Socket: " output #echo-status { "connecting" } }
                form #echo-form {
                    label for="echo-text" { "Message" }
                    " "
                    input #echo-text name="text" type="text" autocomplete="off";
                    " "
                    button type="submit" { "Send text" }
                    " "
                    button #echo-binary type="button" { "Send as bytes" }
                }
                ol #echo-log {}
            }
        },
    )
}
