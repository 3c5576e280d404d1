//! Live-server mode: any directory of HTML, CSS and images, served with the client
//! script and watched, with no Rust app of one's own.

use std::path::PathBuf;

use axum::Router;

use crate::reload::{watch_static, AutoReload};
use crate::static_files::static_files;
use crate::watch::WatchError;

/// Serve the directory `root` at `/` with reload: [`static_files`] (with
/// `index.html` for directories, MIME types from the file name, `Cache-Control:
/// no-cache` and an HTML 404 page), the client script injected into every HTML page,
/// and [`watch_static`] on `root`, so a changed stylesheet or image is swapped in
/// place and any other change reloads the tabs.
///
/// The watcher belongs to `reload` (see [`watch_static`]).
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let reload = axum_autoreload::AutoReload::builder().enabled(true).build();
/// let app = axum_autoreload::live_server("site", &reload)?;
/// let listener = axum_autoreload::bind("127.0.0.1:8080").await?;
/// reload.serve(listener, app).await?;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// Returns `Err` when `root` cannot be watched (most often: it does not exist).
pub fn live_server(root: impl Into<PathBuf>, reload: &AutoReload) -> Result<Router, WatchError> {
    let root = root.into();
    watch_static(&root, "/", reload)?;
    let app = Router::new()
        .fallback_service(static_files(root))
        .layer(reload.layer());
    Ok(app)
}
