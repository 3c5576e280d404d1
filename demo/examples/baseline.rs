//! The baseline for `cargo bench --bench harness`: a plain axum app the way one is
//! usually written for `watchexec --socket`, without this crate's listener and
//! shutdown handling.
//!
//! - It takes the passed socket as it is with listenfd (the backlog watchexec and
//!   systemfd chose, 1), or binds `127.0.0.1:8080`.
//! - It serves with `axum::serve(..).with_graceful_shutdown(SIGINT)`, which waits
//!   for every open response, event streams included.
//! - `GET /auto_refresh` is a naive reload stream, one per tab: `hello` first, then
//!   `reload` on SIGUSR1, and nothing on shutdown.
//!
//! It answers `GET /` (a small page), `GET /auto_refresh/status` (JSON with the
//! instance id and the open streams, as the demo does), `/static/*` from
//! `--static-dir DIR`, and `GET /page` with the file given by `--page FILE` held in
//! memory. `--layer` adds this crate's [`axum_autoreload::inject::InjectLayer`] (turned on)
//! around everything, to measure what the layer costs on a plain server.
//!
//! ```sh
//! cargo build --example baseline
//! watchexec --socket 8080 --restart --stop-signal SIGINT -- target/debug/examples/baseline
//! ```

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures_util::stream::{self, Stream, StreamExt};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tower_http::services::ServeDir;

/// What every handler shares.
#[derive(Clone)]
struct App {
    instance: Arc<str>,
    reloads: broadcast::Sender<()>,
    open_streams: Arc<AtomicUsize>,
    page: Bytes,
}

/// Counts a stream as open while it lives.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The command line.
#[derive(clap::Parser)]
struct Args {
    /// Wrap everything in this crate's layer, turned on.
    #[arg(long)]
    layer: bool,
    /// Serve `/static/*` from this directory.
    #[arg(long, default_value = "static")]
    static_dir: PathBuf,
    /// Serve `GET /page` with this file, held in memory.
    #[arg(long)]
    page: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = <Args as clap::Parser>::parse();
    let listener = match listenfd::ListenFd::from_env().take_tcp_listener(0)? {
        Some(passed) => {
            passed.set_nonblocking(true)?;
            TcpListener::from_std(passed)?
        }
        None => TcpListener::bind("127.0.0.1:8080").await?,
    };
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let page = match &args.page {
        Some(file) => std::fs::read_to_string(file)?,
        None => String::from("<!DOCTYPE html><title>page</title><body>no --page</body>"),
    };
    let app = App {
        instance: format!("{started:x}-{:08x}", std::process::id()).into(),
        reloads: broadcast::channel(16).0,
        open_streams: Arc::new(AtomicUsize::new(0)),
        page: Bytes::from(page),
    };

    let mut user1 = signal(SignalKind::user_defined1())?;
    let reloads = app.reloads.clone();
    tokio::spawn(async move {
        while user1.recv().await.is_some() {
            let _ = reloads.send(());
        }
    });

    let mut router = Router::new()
        .route("/", get(home))
        .route("/page", get(page_in_memory))
        .route("/auto_refresh", get(reload_stream))
        .route("/auto_refresh/status", get(status))
        .nest_service("/static", ServeDir::new(&args.static_dir))
        .with_state(app);
    if args.layer {
        let reload = axum_autoreload::AutoReload::builder().enabled(true).build();
        router = router.layer(reload.layer());
    }
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

async fn home(State(app): State<App>) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>baseline</title></head>\
         <body><h1>baseline</h1><p>Served by instance <code id=\"instance\">{}</code>.</p></body></html>\n",
        app.instance
    ))
}

async fn page_in_memory(State(app): State<App>) -> Html<Bytes> {
    Html(app.page)
}

async fn status(State(app): State<App>) -> impl IntoResponse {
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        format!(
            "{{\"instance\":\"{}\",\"open_streams\":{}}}",
            app.instance,
            app.open_streams.load(Ordering::Relaxed)
        ),
    )
}

async fn reload_stream(
    State(app): State<App>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    app.open_streams.fetch_add(1, Ordering::Relaxed);
    let open = Open(Arc::clone(&app.open_streams));
    let instance = Arc::clone(&app.instance);
    let hello = Event::default()
        .event("hello")
        .data(&*instance)
        .retry(Duration::from_millis(100));
    let reloads = BroadcastStream::new(app.reloads.subscribe()).map(move |_| {
        let _open = &open;
        Ok(Event::default().event("reload").data(&*instance))
    });
    Sse::new(stream::once(async move { Ok(hello) }).chain(reloads))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
