//! A chat over WebSockets written the way axum's `examples/chat` is, served by
//! `axum_autoreload::serve`: each socket is split, one spawned task forwards the
//! broadcast channel to the client, another forwards the client's messages to the
//! channel, and whichever ends first aborts the other. Nothing in it watches the
//! shutdown: the server closes its sockets (`Serve::upgrade_grace`).
//!
//! A client's first text message is its name; then every text it sends goes to
//! every client as `name: text`, with `name joined.` and `name left.` around.
//!
//! ```sh
//! cargo build -p axum-autoreload-demo --example chat
//! watchexec --socket 3000 --restart --stop-signal SIGINT -- target/debug/examples/chat
//! ```
//!
//! `--close-on-shutdown` makes the sending task `select!` on the
//! `ShutdownSignal` too and send a Close frame with 1012 (reason `restart`), the
//! README's recipe; `--keep-open` answers every upgrade with `KeepStreamOpen`
//! beside it (the server then leaves the sockets open until its drain deadline);
//! `--drain-deadline MS` sets that deadline. The tests in `tests/ws_shutdown.rs`
//! run it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use axum_autoreload::{AutoReload, KeepStreamOpen, ShutdownSignal};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast;
use tracing_subscriber::EnvFilter;

/// What every socket shares.
struct Chat {
    names: Mutex<HashSet<String>>,
    messages: broadcast::Sender<String>,
    close_on_shutdown: bool,
    keep_open: bool,
}

/// The command line.
#[derive(clap::Parser)]
struct Args {
    /// Send a Close frame with 1012 when the shutdown begins.
    #[arg(long)]
    close_on_shutdown: bool,
    /// Answer upgrades with `KeepStreamOpen`: the server does not close them.
    #[arg(long)]
    keep_open: bool,
    /// The server's drain deadline, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    drain_deadline: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = <Args as clap::Parser>::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::from_default_env())
        .init();
    let chat = Arc::new(Chat {
        names: Mutex::default(),
        messages: broadcast::channel(100).0,
        close_on_shutdown: args.close_on_shutdown,
        keep_open: args.keep_open,
    });
    let reload = AutoReload::new();
    let app = Router::new()
        .route("/", get(|| async { "a chat at /websocket" }))
        .route("/websocket", get(upgrade))
        .with_state(chat)
        .layer(reload.layer());
    let listener = axum_autoreload::bind("127.0.0.1:3000").await?;
    reload
        .serve(listener, app)
        .drain_deadline(Duration::from_millis(args.drain_deadline))
        .await?;
    Ok(())
}

async fn upgrade(
    upgrade: WebSocketUpgrade,
    shutdown: ShutdownSignal,
    State(chat): State<Arc<Chat>>,
) -> Response {
    let keep_open = chat.keep_open;
    let shutdown = chat.close_on_shutdown.then_some(shutdown);
    let response = upgrade.on_upgrade(|socket| talk(socket, chat, shutdown));
    match keep_open {
        true => (KeepStreamOpen, response).into_response(),
        false => response,
    }
}

/// One client: its name, then its messages out and everyone's in, until either
/// side ends (or the shutdown begins, if `shutdown` is given).
async fn talk(socket: WebSocket, chat: Arc<Chat>, shutdown: Option<ShutdownSignal>) {
    let (mut to_client, mut from_client) = socket.split();
    let name = loop {
        match from_client.next().await {
            Some(Ok(Message::Text(name))) => break name.to_string(),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return,
        }
    };
    let taken = !lock(&chat.names).insert(name.clone());
    if taken {
        let _ = to_client.send(Message::text("name taken")).await;
        return;
    }
    let mut messages = chat.messages.subscribe();
    let _ = chat.messages.send(format!("{name} joined."));

    let mut sending = tokio::spawn(async move {
        let Some(shutdown) = shutdown else {
            while let Ok(message) = messages.recv().await {
                if to_client.send(Message::text(message)).await.is_err() {
                    break;
                }
            }
            return;
        };
        // The README's recipe.
        loop {
            tokio::select! {
                () = shutdown.triggered() => {
                    let close = CloseFrame { code: close_code::RESTART, reason: "restart".into() };
                    let _ = to_client.send(Message::Close(Some(close))).await;
                    break;
                }
                next = messages.recv() => {
                    let Ok(text) = next else { break };
                    if to_client.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    let (broadcast, sender) = (chat.messages.clone(), name.clone());
    let mut receiving = tokio::spawn(async move {
        while let Some(Ok(Message::Text(text))) = from_client.next().await {
            let _ = broadcast.send(format!("{sender}: {text}"));
        }
    });
    tokio::select! {
        _ = &mut sending => receiving.abort(),
        _ = &mut receiving => sending.abort(),
    }

    let _ = chat.messages.send(format!("{name} left."));
    lock(&chat.names).remove(&name);
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
