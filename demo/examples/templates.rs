//! Template edits without a rebuild: pages rendered with minijinja from
//! `demo/templates/`, which `minijinja-autoreload` reloads when a file changes,
//! and `axum_autoreload::watch_templates` watching the same folder, so every open
//! tab morphs the new page in with no build and no restart.
//!
//! ```sh
//! watchexec --socket 8080 --restart --stop-signal SIGINT --ignore 'demo/templates/**' -- cargo run -p axum-autoreload-demo --example templates
//! ```
//!
//! then edit `demo/templates/index.html`. `TEMPLATES_DIR` names another folder.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use axum_autoreload::AutoReload;
use minijinja::{context, path_loader, Environment};
use minijinja_autoreload::AutoReloader;

/// The templates beside this example.
const TEMPLATES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let listener = axum_autoreload::bind("127.0.0.1:8080").await?;
    let reload = AutoReload::new();
    let dir =
        std::env::var_os("TEMPLATES_DIR").map_or_else(|| PathBuf::from(TEMPLATES), PathBuf::from);
    let app = app(&dir, &reload)?;
    tracing::info!("serving {} on {}", dir.display(), listener.local_addr()?);
    reload.serve(listener, app).await?;
    Ok(())
}

/// The app: `/` renders `index.html` from `dir`. Its templates are reloaded when
/// they change (minijinja-autoreload), and every tab morphs the new page in
/// (`watch_templates`).
pub fn app(dir: &Path, reload: &AutoReload) -> Result<Router, axum_autoreload::WatchError> {
    let templates = dir.to_owned();
    let reloader = AutoReloader::new(move |notifier| {
        let mut env = Environment::new();
        env.set_loader(path_loader(&templates));
        notifier.watch_path(&templates, true);
        Ok(env)
    });
    axum_autoreload::watch_templates(dir, reload)?;
    Ok(Router::new()
        .route("/", get(index))
        .with_state(Arc::new(reloader))
        .layer(reload.layer()))
}

async fn index(State(templates): State<Arc<AutoReloader>>) -> Response {
    let rendered = templates.acquire_env().and_then(|env| {
        let items = ["one", "two", "three"];
        env.get_template("index.html")?
            .render(context! { items => items })
    });
    match rendered {
        Ok(page) => Html(page).into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{err:#}")).into_response(),
    }
}
