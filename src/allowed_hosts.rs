//! Allowed hosts: checks that keep other web sites from using the development
//! server through the developer's own browser, as a tower layer
//! ([`AllowedHostsLayer`], its service [`AllowedHosts`] and [`ResponseFuture`]).
//!
//! - **Host** (DNS rebinding): a page on another site can make its own domain
//!   resolve to 127.0.0.1 and then read the answers. Such requests carry that
//!   domain in `Host`, so only `localhost`, names under `.localhost`, IP addresses
//!   and names allowed with [`AllowedHostsLayer::allow_host`] are answered; others get 403.
//! - **Origin** (cross-site requests): a page on another site can send requests to
//!   localhost. Requests that change state (any method but GET, HEAD and OPTIONS)
//!   and WebSocket upgrades are refused with 403 when their `Origin` names a host
//!   that is not allowed (or is `null`); on the reload routes (`/auto_refresh` and
//!   below), which the layer of [`crate::AutoReload::layer`] answers itself, every request is.
//!
//! This follows what Vite does (`server.allowedHosts`, its WebSocket origin check).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::ConnectInfo;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

/// Checks that keep other web sites from using the development server through the
/// developer's browser, as a tower layer. A refused request gets `403 Forbidden`
/// with a one-line `text/plain` explanation and never reaches the inner service.
///
/// - **Host** (DNS rebinding): only `localhost`, names under `.localhost`, IP
///   addresses and names given to [`AllowedHostsLayer::allow_host`] are answered.
/// - **Origin** (cross-site requests): a request that changes state (any method
///   but GET, HEAD and OPTIONS) or upgrades (a WebSocket) is refused when its
///   `Origin` names a host that is not allowed, or is `null`. The reload routes
///   check `Origin` on every request.
///
/// No CORS headers are added. This follows what Vite does (`server.allowedHosts`,
/// its WebSocket origin check).
///
/// [`crate::AutoReload::allowed_hosts`] gives one with the names allowed by
/// [`crate::AutoReloadBuilder::allow_host`]; the reload paths answered by
/// [`crate::AutoReload::layer`] check it themselves, and [`crate::serve()`] applies it
/// to the whole app. With `axum::serve`, add it to the app as its outermost layer.
///
/// # Examples
///
/// ```
/// use axum::{routing::get, Router};
/// use axum_autoreload::allowed_hosts::AllowedHostsLayer;
///
/// let app: Router = Router::new()
///     .route("/", get(|| async { "hello" }))
///     .layer(AllowedHostsLayer::new().allow_host("dev.example"));
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a layer does nothing until it is applied"]
pub struct AllowedHostsLayer {
    /// Host names allowed besides `localhost`, `*.localhost` and IP addresses,
    /// lower-cased, without a trailing dot.
    allowed: Arc<Vec<String>>,
    /// Check `Origin` on every request, not only on those that change state.
    every_request: bool,
}

impl AllowedHostsLayer {
    /// Checks that answer `localhost`, names under `.localhost` and IP addresses.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also answer requests whose `Host` is `host` (a name, without port; compared
    /// ASCII case-insensitively, a trailing dot ignored), and allow it in `Origin`.
    /// Repeat for more names.
    pub fn allow_host(mut self, host: &str) -> Self {
        let host = normalize(host);
        if !host.is_empty() && !self.allowed.contains(&host) {
            Arc::make_mut(&mut self.allowed).push(host);
        }
        self
    }

    /// The same checks, with `Origin` checked on every request: for the reload
    /// paths, whose stream and status another site must not read.
    pub(crate) fn every_request(self) -> Self {
        Self {
            every_request: true,
            ..self
        }
    }

    /// `403 Forbidden` with the reason, logged, when `request` is refused; `None`
    /// when it may go on.
    fn check<ReqBody, ResBody: From<String>>(
        &self,
        request: &Request<ReqBody>,
    ) -> Option<Response<ResBody>> {
        let reason = self.refusal(request)?;
        let from = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(remote)| format!(" from {remote}"))
            .unwrap_or_default();
        tracing::warn!(
            "refused {} {}{from}: Host {:?}, Origin {:?}",
            request.method(),
            request.uri().path(),
            request.headers().get(header::HOST),
            request.headers().get(header::ORIGIN),
        );
        Some(forbidden(reason))
    }

    /// Why the request is refused, or `None` when it may go on.
    fn refusal<B>(&self, request: &Request<B>) -> Option<String> {
        let headers = request.headers();
        if let Some(host) = headers.get(header::HOST) {
            let host = host.to_str().unwrap_or("");
            let name = host_name(host);
            if !self.is_allowed(name) {
                return Some(format!(
                    "Host {host:?} is not allowed: this development server answers localhost and IP addresses; \
                     allow another name with AutoReloadBuilder::allow_host({name:?}) or AXUM_AUTORELOAD_ALLOWED_HOSTS\n",
                ));
            }
        }
        if self.every_request || changes_state(request.method(), headers) {
            if let Some(origin) = headers.get(header::ORIGIN) {
                let origin = origin.to_str().unwrap_or("null");
                if !self.is_allowed(origin_host(origin)) {
                    return Some(format!(
                        "cross-site request from origin {origin:?} refused\n"
                    ));
                }
            }
        }
        None
    }

    /// Compared without a lowercased copy: this runs for every request.
    fn is_allowed(&self, host: &str) -> bool {
        let host = host.trim().trim_end_matches('.');
        let suffix = host.len().checked_sub(".localhost".len());
        host.eq_ignore_ascii_case("localhost")
            || suffix.is_some_and(|at| host.as_bytes()[at..].eq_ignore_ascii_case(b".localhost"))
            || host.parse::<IpAddr>().is_ok()
            || self
                .allowed
                .iter()
                .any(|name| name.eq_ignore_ascii_case(host))
    }
}

impl<S> Layer<S> for AllowedHostsLayer {
    type Service = AllowedHosts<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AllowedHosts {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`AllowedHostsLayer`]: refuses what the layer refuses, passes
/// the rest to the inner service.
#[derive(Clone, Debug)]
#[must_use = "a service does nothing until it is called"]
pub struct AllowedHosts<S> {
    inner: S,
    layer: AllowedHostsLayer,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AllowedHosts<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<String>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        match self.layer.check(&request) {
            None => ResponseFuture {
                kind: Kind::Allowed {
                    inner: self.inner.call(request),
                },
            },
            Some(refused) => ResponseFuture {
                kind: Kind::Refused {
                    response: Some(refused),
                },
            },
        }
    }
}

pin_project! {
    /// The response future of [`AllowedHosts`]: the inner service's, or the 403.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<F, B> {
        Allowed { #[pin] inner: F },
        Refused { response: Option<Response<B>> },
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Allowed { inner } => inner.poll(cx),
            KindProj::Refused { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => panic!("ResponseFuture polled after it completed"),
            },
        }
    }
}

/// A method other than GET, HEAD and OPTIONS, or an upgrade (a WebSocket).
fn changes_state(method: &Method, headers: &HeaderMap) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
        || headers.contains_key(header::UPGRADE)
}

/// `localhost:8080` → `localhost`; `[::1]:8080` → `::1`.
fn host_name(authority: &str) -> &str {
    let authority = authority.trim();
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _port)| host)
}

/// `http://localhost:8080` → `localhost`; `null` → `` (never allowed).
fn origin_host(origin: &str) -> &str {
    origin
        .split_once("://")
        .map_or("", |(_scheme, authority)| host_name(authority))
}

fn normalize(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn forbidden<B: From<String>>(message: String) -> Response<B> {
    let mut response = Response::new(B::from(message));
    *response.status_mut() = StatusCode::FORBIDDEN;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, path: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("request")
    }

    fn refused(
        guard: &AllowedHostsLayer,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> bool {
        guard.refusal(&request(method, path, headers)).is_some()
    }

    #[test]
    fn hosts() {
        let guard = AllowedHostsLayer::new().allow_host("Dev.Example.");
        for host in [
            "localhost:8080",
            "LOCALHOST",
            "app.localhost:3000",
            "App.LocalHost.:3000",
            "127.0.0.1:8080",
            "[::1]:8080",
            "192.168.1.20",
            "dev.example:8080",
            "DEV.example.",
        ] {
            assert!(
                !refused(&guard, Method::GET, "/", &[("host", host)]),
                "{host}"
            );
        }
        for host in [
            "evil.example",
            "localhost.evil.example:8080",
            "127.0.0.1.nip.io",
            "xlocalhost",
            "",
        ] {
            assert!(
                refused(&guard, Method::GET, "/", &[("host", host)]),
                "{host}"
            );
        }
    }

    #[test]
    fn origins() {
        let guard = AllowedHostsLayer::new();
        let same = [
            ("host", "localhost:8080"),
            ("origin", "http://localhost:8080"),
        ];
        let foreign = [
            ("host", "localhost:8080"),
            ("origin", "https://evil.example"),
        ];
        let null = [("host", "localhost:8080"), ("origin", "null")];
        assert!(!refused(&guard, Method::POST, "/posts", &same));
        assert!(refused(&guard, Method::POST, "/posts", &foreign));
        assert!(refused(&guard, Method::DELETE, "/x", &null));
        assert!(refused(
            &guard,
            Method::POST,
            "/auto_refresh/reload",
            &foreign
        ));
        let reload_routes = AllowedHostsLayer::new().every_request();
        assert!(refused(
            &reload_routes,
            Method::GET,
            "/auto_refresh",
            &foreign
        ));
        assert!(!refused(
            &reload_routes,
            Method::GET,
            "/auto_refresh",
            &same
        ));
        assert!(refused(
            &guard,
            Method::GET,
            "/ws",
            &[foreign[0], foreign[1], ("upgrade", "websocket")]
        ));
        // A plain GET from another site's page (an <img>, a link) is harmless: it
        // cannot read the answer.
        assert!(!refused(&guard, Method::GET, "/", &foreign));
        // No Origin (curl, same-origin GET): allowed.
        assert!(!refused(
            &guard,
            Method::POST,
            "/posts",
            &[("host", "localhost")]
        ));
    }
}
