//! The demo app: a home page rendered from Rust, a live feed (htmx, server-sent
//! events, SQLite), a WebSocket echo, static files, and the reload machinery from
//! the library.

mod args;
mod echo;
mod feed;
mod feed_view;
mod form;
mod pages;
mod store;

use std::process::ExitCode;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::get;
use axum::Router;
use axum_autoreload::listener::ListenerError;
use axum_autoreload::AutoReload;
use tracing_subscriber::EnvFilter;

pub(crate) use args::Args;

/// What the handlers share.
#[derive(Clone, Debug)]
struct AppState {
    reload: AutoReload,
    feed: feed::Feed,
}

impl FromRef<AppState> for AutoReload {
    fn from_ref(state: &AppState) -> Self {
        state.reload.clone()
    }
}

impl FromRef<AppState> for feed::Feed {
    fn from_ref(state: &AppState) -> Self {
        state.feed.clone()
    }
}

fn routes(state: AppState, static_dir: &std::path::Path) -> Router {
    let reload = state.reload.clone();
    Router::new()
        .route("/", get(pages::home))
        .route(
            feed_view::PAGE_PATH,
            get(feed::page)
                .post(feed::create)
                .layer(DefaultBodyLimit::max(feed::MAX_BODY_BYTES)),
        )
        .route(feed_view::EVENTS_PATH, get(feed::events))
        .route("/echo", get(echo::page))
        .route("/ws", get(echo::upgrade))
        .nest_service("/static", axum_autoreload::static_files(static_dir))
        .fallback(pages::not_found)
        .with_state(state)
        .layer(reload.layer())
}

/// Set up logging, take or bind the socket and serve until shut down.
pub(crate) async fn run(args: Args) -> ExitCode {
    init_tracing();
    match serve(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

type Error = Box<dyn std::error::Error>;

async fn serve(args: Args) -> Result<(), Error> {
    let listener = axum_autoreload::bind(args.addr())
        .await
        .map_err(with_flags)?;
    let url = url(listener.local_addr()?);
    let reload = args
        .allowed_hosts
        .iter()
        .fold(AutoReload::builder(), |builder, host| {
            builder.allow_host(host)
        })
        .build();
    log_reload(&reload, &url);

    let app = match &args.root {
        Some(root) => axum_autoreload::live_server(root, &reload)?,
        None => {
            let app = demo_app(&args, &reload).await?;
            if let Err(err) = axum_autoreload::watch_static(&args.static_dir, "/static", &reload) {
                tracing::warn!("{err}: static files are not watched");
            }
            app
        }
    };

    reload
        .serve(listener, app)
        .drain_deadline(args.drain_deadline())
        .header_read_timeout(args.header_read_timeout())
        .await?;
    Ok(())
}

/// The demo app's routes and state, with its feed opened on the database.
async fn demo_app(args: &Args, reload: &AutoReload) -> Result<Router, Error> {
    let store = store::SqliteStore::open(&args.db)?;
    tracing::info!("posts kept in {}", args.db.display());
    let feed = feed::Feed::new(Arc::new(store)).await?;
    let state = AppState {
        reload: reload.clone(),
        feed,
    };
    Ok(routes(state, &args.static_dir))
}

/// A bind error, with the demo's own way to pick the address.
fn with_flags(err: ListenerError) -> Error {
    match err {
        ListenerError::Bind { .. } => format!("{err} (the demo's address: --addr or PORT)").into(),
        err => err.into(),
    }
}

/// The URL a person opens: `localhost` for loopback and unspecified addresses.
fn url(addr: std::net::SocketAddr) -> String {
    let ip = addr.ip();
    if ip.is_loopback() || ip.is_unspecified() {
        format!("http://localhost:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

fn log_reload(reload: &AutoReload, url: &str) {
    if reload.is_enabled() {
        tracing::info!(
            "auto-reload on (instance {}): open {url}",
            reload.instance_id()
        );
    } else {
        tracing::info!(
            "auto-reload off (release build; set AXUM_AUTORELOAD=1 to turn it on): open {url}"
        );
    }
}

fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
