//! A chat app written as axum's `examples/chat` is (`examples/chat.rs`: split
//! sockets, a spawned task per direction, a broadcast channel, no shutdown
//! handling), in its own process on a passed socket, with tokio-tungstenite
//! clients: at SIGINT the server closes its sockets with 1012 after the upgrade
//! grace and the process exits long before the drain deadline; with the README's
//! recipe the app sends its own 1012; sockets the app keeps open with
//! `KeepStreamOpen` stay open until the deadline.

#[path = "demo/support.rs"]
mod demo;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dev_support::process::Proc;
use dev_support::socket::PassedSocket;
use futures_util::{SinkExt, StreamExt};
use nix::sys::signal::Signal;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(5);

/// The chat example with `args` on a passed socket of its own, once `GET /`
/// answers; its address.
async fn chat(args: &[&str]) -> (SocketAddr, Proc) {
    let socket = PassedSocket::new();
    let mut command = std::process::Command::new(demo::example("chat"));
    let log = std::env::var("TEST_RUST_LOG").unwrap_or_else(|_| "warn".into());
    command.args(args).env("RUST_LOG", log);
    socket.pass_to(&mut command);
    let chat = demo::spawn(command);
    dev_support::http::wait_ready(socket.addr, demo::READY).await;
    (socket.addr, chat)
}

/// A client that has joined as `name` (and heard its own `name joined.`).
async fn join(addr: SocketAddr, name: &str) -> Socket {
    let connected = tokio_tungstenite::connect_async(format!("ws://{addr}/websocket")).await;
    let (mut ws, _) = connected.unwrap_or_else(|err| panic!("connecting to {addr}: {err}"));
    ws.send(Message::text(name)).await.expect("send the name");
    heard(&mut ws, &format!("{name} joined.")).await;
    ws
}

/// The next message, or how the connection ended: `None` at its end, the error
/// if it failed.
async fn next(ws: &mut Socket) -> Option<Result<Message, tungstenite::Error>> {
    let next = tokio::time::timeout(WAIT, ws.next()).await;
    next.unwrap_or_else(|_| panic!("nothing from the socket within {WAIT:?}"))
}

/// Reads until the text `text`.
async fn heard(ws: &mut Socket, text: &str) {
    loop {
        match next(ws).await {
            Some(Ok(Message::Text(heard))) if heard.as_str() == text => return,
            Some(Ok(_)) => {}
            other => panic!("the socket ended before {text:?}: {other:?}"),
        }
    }
}

/// Reads past the chat's texts to the end of the connection: the code and reason
/// of the Close frame that came, if one did. Asserts that the connection then
/// ends.
async fn close_frame(ws: &mut Socket) -> Option<(u16, String)> {
    loop {
        match next(ws).await {
            Some(Ok(Message::Text(_))) => {}
            Some(Ok(Message::Close(frame))) => {
                let end = next(ws).await;
                assert!(
                    end.is_none(),
                    "the connection ends after the Close: {end:?}"
                );
                return frame.map(|frame| (u16::from(frame.code), frame.reason.to_string()));
            }
            Some(Ok(other)) => panic!("unexpected {other:?}"),
            Some(Err(_)) | None => return None,
        }
    }
}

/// The code of [`close_frame`].
async fn close_code(ws: &mut Socket) -> Option<u16> {
    close_frame(ws).await.map(|(code, _)| code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_that_ignores_the_shutdown_gets_its_sockets_closed_with_1012_and_exits_fast() {
    let (addr, mut chat) = chat(&[]).await;
    let mut alice = join(addr, "alice").await;
    let mut bob = join(addr, "bob").await;
    heard(&mut alice, "bob joined.").await;

    let signalled = Instant::now();
    chat.signal(Signal::SIGINT);
    let why = "well before the drain deadline (2 s): the server closes the sockets";
    demo::assert_exits_cleanly(&mut chat, Duration::from_secs(1), why);
    let ms = signalled.elapsed().as_millis();
    eprintln!("exit {ms} ms after SIGINT with 2 WebSockets open");

    for (name, ws) in [("alice", &mut alice), ("bob", &mut bob)] {
        let code = close_code(ws).await;
        assert_eq!(code, Some(1012), "{name}: service restart, from the server");
    }
}

/// The README's recipe: the sending task sends the Close itself (its reason
/// tells it from the server's, which has none).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_whose_sending_task_watches_the_signal_sends_its_own_1012() {
    let (addr, mut chat) = chat(&["--close-on-shutdown"]).await;
    let mut alice = join(addr, "alice").await;
    let mut bob = join(addr, "bob").await;
    heard(&mut alice, "bob joined.").await;

    chat.signal(Signal::SIGINT);
    let why = "well before the drain deadline (2 s): the app closes the sockets";
    demo::assert_exits_cleanly(&mut chat, Duration::from_secs(1), why);
    for (name, ws) in [("alice", &mut alice), ("bob", &mut bob)] {
        let frame = close_frame(ws).await;
        assert_eq!(
            frame,
            Some((1012, "restart".into())),
            "{name}: the app's Close"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_kept_open_stay_open_past_the_grace_until_the_drain_deadline() {
    let deadline = Duration::from_millis(1500);
    let (addr, mut chat) = chat(&["--keep-open", "--drain-deadline", "1500"]).await;
    let mut alice = join(addr, "alice").await;
    let mut bob = join(addr, "bob").await;
    heard(&mut alice, "bob joined.").await;

    let signalled = Instant::now();
    chat.signal(Signal::SIGINT);
    // Past the upgrade grace (80 ms), with room: the sockets kept open still carry
    // the chat.
    tokio::time::sleep(Duration::from_millis(300)).await;
    alice.send(Message::text("still here")).await.expect("send");
    heard(&mut bob, "alice: still here").await;
    assert!(chat.exited().is_none(), "the drain waits for the sockets");

    let why = "at the drain deadline (1.5 s)";
    demo::assert_exits_cleanly(&mut chat, Duration::from_secs(5), why);
    let waited = signalled.elapsed();
    assert!(waited >= deadline, "exited after {waited:?}");
    for (name, ws) in [("alice", &mut alice), ("bob", &mut bob)] {
        let code = close_code(ws).await;
        assert_eq!(code, None, "{name}: the app's sockets are dropped at exit");
    }
}

/// Not a test: the exit time the CHANGELOG quotes. `cargo test -p
/// axum-autoreload --test ws_shutdown -- --ignored --nocapture`: five rounds
/// of SIGINT with two sockets open, and how long each exit took.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement"]
async fn measure_the_exit_with_two_sockets_open() {
    let mut exits = Vec::new();
    for _ in 0..5 {
        let (addr, mut chat) = chat(&[]).await;
        let mut alice = join(addr, "alice").await;
        let _bob = join(addr, "bob").await;
        heard(&mut alice, "bob joined.").await;
        let signalled = Instant::now();
        chat.signal(Signal::SIGINT);
        chat.wait_exit(Duration::from_secs(5)).expect("an exit");
        exits.push(signalled.elapsed().as_millis());
    }
    eprintln!("exit after SIGINT with 2 WebSockets open, ms: {exits:?}");
}
