//! The demo app: a home page rendered from Rust, static files, and the reload
//! machinery from the library.

mod args;
mod pages;

use std::process::ExitCode;

use axum::routing::get;
use axum::Router;
use axum_autoreload::{listener, AutoReload};
use tower_http::services::ServeDir;
use tracing_subscriber::EnvFilter;

pub(crate) use args::Args;

/// Set up logging, take or bind the socket and serve until shut down.
pub(crate) async fn run(args: Args) -> ExitCode {
    init_tracing();
    let addr = args.addr();
    let listener = match listener::take_or_bind(addr) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    match listener.source() {
        listener::Source::SocketActivation { fd } => tracing::info!(
            "listening on {} from socket activation (LISTEN_FDS, fd {fd}), backlog {}",
            listener.local_addr(),
            listener::BACKLOG,
        ),
        listener::Source::Bound => tracing::info!(
            "listening on {} (bound here: run under `watchexec --socket` to keep the socket across restarts)",
            listener.local_addr(),
        ),
    }
    let url = listener.url();

    let reload = AutoReload::new();
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
    let app = Router::new()
        .route("/", get(pages::home))
        .nest_service("/static", ServeDir::new(&args.static_dir))
        .merge(reload.router())
        .fallback(pages::not_found)
        .with_state(reload.clone())
        .layer(reload.layer());

    let listener = match listener.into_tokio() {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("error: cannot use the listening socket: {err}");
            return ExitCode::FAILURE;
        }
    };
    let served = args
        .allowed_hosts
        .iter()
        .fold(
            axum_autoreload::serve(listener, app, reload),
            |serve, host| serve.allow_host(host),
        )
        .drain_deadline(args.drain_deadline())
        .header_read_timeout(args.header_read_timeout())
        .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
