//! Static files that stay inside their directory.

use std::convert::Infallible;
use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use http::{header, HeaderValue, Request, Response, StatusCode};
use tower::{Service, ServiceExt};
use tower_http::services::ServeDir;

/// Serve the files under `root`: tower-http's `ServeDir`, with `index.html` for
/// directories, plus a check that no request reaches a file outside `root`.
///
/// `ServeDir` already refuses `..` (plain or percent-encoded, such as `%2e%2e` and
/// `..%2f`) and absolute paths; this also refuses a symbolic link that leads out of
/// `root`. Refused and missing files get 404 with a small HTML page (so a tab left
/// on it reloads once the file appears). Every response carries
/// `Cache-Control: no-cache`, so the browser revalidates a file after it changed.
///
/// # Examples
///
/// ```
/// let app: axum::Router = axum::Router::new()
///     .nest_service("/static", axum_autoreload::static_files("static"));
/// ```
pub fn static_files(root: impl Into<PathBuf>) -> StaticFiles {
    let root = root.into();
    StaticFiles {
        inner: ServeDir::new(&root),
        root,
    }
}

/// The service made by [`static_files`].
#[derive(Clone, Debug)]
pub struct StaticFiles {
    root: PathBuf,
    inner: ServeDir,
}

impl<B> Service<Request<B>> for StaticFiles
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let root = self.root.clone();
        let inner = self.inner.clone();
        Box::pin(async move {
            // The path as the browser asked for it, before a `nest_service` prefix
            // was stripped.
            let shown = request
                .extensions()
                .get::<axum::extract::OriginalUri>()
                .map_or_else(|| request.uri().path(), |original| original.path())
                .to_owned();
            if leaves_root(&root, request.uri().path()).await {
                tracing::warn!("refused {shown}: it leads out of {}", root.display());
                return Ok(not_found(&shown));
            }
            let mut response = match inner.oneshot(request).await {
                Ok(response) if response.status() == StatusCode::NOT_FOUND => not_found(&shown),
                Ok(response) => response.map(Body::new),
                Err(never) => match never {},
            };
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            Ok(response)
        })
    }
}

/// Whether the file a request path names is, once symbolic links are resolved,
/// outside `root`. Paths that `ServeDir` refuses anyway, and missing files, are not.
async fn leaves_root(root: &Path, path: &str) -> bool {
    let Ok(decoded) = percent_encoding::percent_decode_str(path).decode_utf8() else {
        return false;
    };
    let mut candidate = root.to_path_buf();
    for component in Path::new(decoded.trim_start_matches('/')).components() {
        match component {
            Component::Normal(part) => candidate.push(part),
            Component::CurDir => {}
            // ServeDir refuses these itself.
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    let (Ok(real_root), Ok(real)) = (
        tokio::fs::canonicalize(root).await,
        tokio::fs::canonicalize(&candidate).await,
    ) else {
        return false;
    };
    !real.starts_with(real_root)
}

fn not_found(path: &str) -> Response<Body> {
    let page = maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "404 Not Found" } }
            body { h1 { "404 Not Found" } p { "No file at " code { (path) } "." } }
        }
    };
    let mut response = Response::new(Body::from(page.into_string()));
    *response.status_mut() = StatusCode::NOT_FOUND;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}
