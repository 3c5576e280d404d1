use http::{header, HeaderMap, Request, Response, StatusCode};

/// Chooses which responses get the client script, for
/// [`super::InjectLayer::inject_when`].
///
/// The layer asks [`Predicate::request`] before the request goes to the app, and
/// [`Predicate::response`] only when that said yes and the response is one it can
/// rewrite.
///
/// A closure `Fn(StatusCode, &HeaderMap) -> bool + Clone` is a predicate: it is
/// asked about the response's status and headers, and every request qualifies.
pub trait Predicate: Clone {
    /// Whether the answer to `request` may get the script.
    fn request<B>(&self, request: &Request<B>) -> bool;

    /// Whether `response` gets the script.
    fn response<B>(&self, response: &Response<B>) -> bool;
}

/// The default [`Predicate`]: `text/html` responses (any parameters), except to
/// htmx requests (those with an `HX-Request` header), which ask for fragments.
#[derive(Clone, Copy, Debug, Default)]
pub struct HtmlPages;

impl Predicate for HtmlPages {
    fn request<B>(&self, request: &Request<B>) -> bool {
        !request.headers().contains_key("hx-request")
    }

    fn response<B>(&self, response: &Response<B>) -> bool {
        has_media_type(response.headers(), "text/html")
    }
}

impl<F> Predicate for F
where
    F: Fn(StatusCode, &HeaderMap) -> bool + Clone,
{
    fn request<B>(&self, _request: &Request<B>) -> bool {
        true
    }

    fn response<B>(&self, response: &Response<B>) -> bool {
        self(response.status(), response.headers())
    }
}

/// Whether the `Content-Type` in `headers` is `essence` (ASCII case-insensitive,
/// parameters ignored).
pub(super) fn has_media_type(headers: &HeaderMap, essence: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case(essence))
}
