//! Checks that keep other web sites from using the development server through the
//! developer's own browser.
//!
//! - **Host** (DNS rebinding): a page on another site can make its own domain
//!   resolve to 127.0.0.1 and then read the answers. Such requests carry that
//!   domain in `Host`, so only `localhost`, names under `.localhost`, IP addresses
//!   and names allowed with [`crate::Serve::allow_host`] are answered; others get 403.
//! - **Origin** (cross-site requests): a page on another site can send requests to
//!   localhost. Requests that change state (any method but GET, HEAD and OPTIONS),
//!   the reload stream and WebSocket upgrades are refused with 403 when their
//!   `Origin` names a host that is not allowed (or is `null`).
//!
//! This follows what Vite does (`server.allowedHosts`, its WebSocket origin check).

use std::net::IpAddr;

use axum::body::Body;
use http::{header, HeaderMap, Method, Request, Response, StatusCode};

use crate::STREAM_PATH;

/// The host names a server answers, besides `localhost`, `*.localhost` and IP
/// addresses.
#[derive(Debug, Default)]
pub(crate) struct Guard {
    allowed: Vec<String>,
}

impl Guard {
    pub(crate) fn allow(&mut self, host: &str) {
        let host = normalize(host);
        if !host.is_empty() && !self.allowed.contains(&host) {
            self.allowed.push(host);
        }
    }

    /// `Some(403 response)` when the request must be refused.
    pub(crate) fn check<B>(&self, request: &Request<B>) -> Option<Response<Body>> {
        let headers = request.headers();
        if let Some(host) = headers.get(header::HOST) {
            let host = host.to_str().unwrap_or("");
            if !self.is_allowed(host_name(host)) {
                return Some(forbidden(format!(
                    "Host {host:?} is not allowed: this development server answers localhost and IP addresses; \
                     allow another name with --allowed-host {name}\n",
                    name = host_name(host),
                )));
            }
        }
        if needs_same_site(request.method(), request.uri().path(), headers) {
            if let Some(origin) = headers.get(header::ORIGIN) {
                let origin = origin.to_str().unwrap_or("null");
                if !self.is_allowed(origin_host(origin)) {
                    return Some(forbidden(format!(
                        "cross-site request from origin {origin:?} refused\n"
                    )));
                }
            }
        }
        None
    }

    fn is_allowed(&self, host: &str) -> bool {
        let host = normalize(host);
        host == "localhost"
            || host.ends_with(".localhost")
            || host.parse::<IpAddr>().is_ok()
            || self.allowed.contains(&host)
    }
}

fn needs_same_site(method: &Method, path: &str, headers: &HeaderMap) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
        || path == STREAM_PATH
        || path.starts_with("/auto_refresh/")
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

fn forbidden(message: String) -> Response<Body> {
    let mut response = Response::new(Body::from(message));
    *response.status_mut() = StatusCode::FORBIDDEN;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
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

    fn refused(guard: &Guard, method: Method, path: &str, headers: &[(&str, &str)]) -> bool {
        guard.check(&request(method, path, headers)).is_some()
    }

    #[test]
    fn hosts() {
        let mut guard = Guard::default();
        guard.allow("Dev.Example.");
        for host in [
            "localhost:8080",
            "LOCALHOST",
            "app.localhost:3000",
            "127.0.0.1:8080",
            "[::1]:8080",
            "192.168.1.20",
            "dev.example:8080",
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
        let guard = Guard::default();
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
        assert!(refused(&guard, Method::GET, "/auto_refresh", &foreign));
        assert!(refused(
            &guard,
            Method::POST,
            "/auto_refresh/reload",
            &foreign
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
