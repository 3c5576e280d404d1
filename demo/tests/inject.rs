//! The injection layer, driven with `oneshot` against a plain inner service.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode};
use axum_autoreload::AutoReload;
use bytes::Bytes;
use http_body_util::BodyExt;
use tower::{service_fn, Layer, Service, ServiceExt};

fn reload() -> AutoReload {
    AutoReload::builder().enabled(true).build()
}

fn html(body: &'static str) -> Response<Body> {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body))
        .expect("response")
}

/// The whole body.
async fn body_bytes(body: Body) -> Vec<u8> {
    body.collect().await.expect("body").to_bytes().to_vec()
}

async fn call<S>(service: S, request: Request<Body>) -> (Response<()>, String)
where
    S: Service<Request<Body>, Error = Infallible>,
    S::Response: Into<Response<axum::body::Body>>,
{
    let response: Response<Body> = service.oneshot(request).await.expect("infallible").into();
    let (parts, body) = response.into_parts();
    let bytes = body_bytes(body).await;
    (
        Response::from_parts(parts, ()),
        String::from_utf8(bytes.to_vec()).expect("utf-8"),
    )
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("request")
}

fn through_layer(
    reload: &AutoReload,
    make: fn() -> Response<Body>,
) -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible> {
    let inner = service_fn(move |_req: Request<Body>| async move { Ok::<_, Infallible>(make()) });
    reload
        .layer()
        .layer(inner)
        .map_response(|r| r.map(Body::new))
}

fn tag(reload: &AutoReload) -> String {
    reload.script_tag().to_owned()
}

#[tokio::test]
async fn html_gets_the_tag_before_close_body_and_a_right_content_length() {
    let reload = reload();
    let service = through_layer(&reload, || html("<html><body><p>hi</p></BODY></html>"));
    let (response, body) = call(service, get("/")).await;
    assert_eq!(
        body,
        format!("<html><body><p>hi</p>{}</BODY></html>", tag(&reload))
    );
    assert_eq!(
        response.headers()[header::CONTENT_LENGTH],
        body.len().to_string().as_str()
    );
    assert!(tag(&reload).contains(&format!("data-instance=\"{}\"", reload.instance_id())));
    assert!(tag(&reload).contains("src=\"/auto_refresh/client.js"));
}

#[tokio::test]
async fn a_page_without_close_body_gets_it_at_the_end() {
    let reload = reload();
    let service = through_layer(&reload, || html("<h1>fragment-like page</h1>"));
    let (_, body) = call(service, get("/")).await;
    assert_eq!(body, format!("<h1>fragment-like page</h1>{}", tag(&reload)));
}

#[tokio::test]
async fn streamed_html_split_inside_close_body() {
    let reload = reload();
    let inner = service_fn(|_req: Request<Body>| async {
        let chunks = ["<html><body>streamed</b", "o", "dy></html>"]
            .map(|c| Ok::<_, Infallible>(Bytes::from_static(c.as_bytes())));
        Ok::<_, Infallible>(
            Response::builder()
                .header(header::CONTENT_TYPE, "text/html")
                .body(Body::from_stream(futures_util::stream::iter(chunks)))
                .expect("response"),
        )
    });
    let service = reload
        .layer()
        .layer(inner)
        .map_response(|r| r.map(Body::new));
    let (response, body) = call(service, get("/")).await;
    assert_eq!(
        body,
        format!("<html><body>streamed{}</body></html>", tag(&reload))
    );
    assert!(response.headers().get(header::CONTENT_LENGTH).is_none());
}

#[tokio::test]
async fn left_alone() {
    let reload = reload();
    type Case = (&'static str, fn() -> Response<Body>);
    let cases: [Case; 5] = [
        ("JSON", || {
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{\"a\":\"</body>\"}"))
                .expect("response")
        }),
        ("no content type", || {
            Response::new(Body::from("<body></body>"))
        }),
        ("gzip", || {
            Response::builder()
                .header(header::CONTENT_TYPE, "text/html")
                .header(header::CONTENT_ENCODING, "gzip")
                .body(Body::from("<body></body>"))
                .expect("response")
        }),
        ("304", || {
            Response::builder()
                .status(StatusCode::NOT_MODIFIED)
                .header(header::CONTENT_TYPE, "text/html")
                .body(Body::empty())
                .expect("response")
        }),
        ("206", || {
            Response::builder()
                .status(StatusCode::PARTIAL_CONTENT)
                .header(header::CONTENT_TYPE, "text/html")
                .body(Body::from("<body></body>"))
                .expect("response")
        }),
    ];
    for (what, make) in cases {
        let expected = String::from_utf8(body_bytes(make().into_body()).await).expect("utf-8");
        let (_, body) = call(through_layer(&reload, make), get("/")).await;
        assert_eq!(body, expected, "{what}");
    }
}

#[tokio::test]
async fn htmx_requests_get_no_tag() {
    let reload = reload();
    let service = through_layer(&reload, || html("<li>fragment</li>"));
    let request = Request::get("/")
        .header("HX-Request", "true")
        .body(Body::empty())
        .expect("request");
    let (_, body) = call(service, request).await;
    assert_eq!(body, "<li>fragment</li>");
}

#[tokio::test]
async fn two_layers_inject_once() {
    let reload = reload();
    let inner =
        service_fn(|_req: Request<Body>| async { Ok::<_, Infallible>(html("<body></body>")) });
    let twice = reload
        .layer()
        .layer(
            reload
                .layer()
                .layer(inner)
                .map_response(|r| r.map(Body::new)),
        )
        .map_response(|r| r.map(Body::new));
    let (response, body) = call(twice, get("/")).await;
    assert_eq!(body, format!("<body>{}</body>", tag(&reload)));
    assert_eq!(
        response.headers()[header::CONTENT_LENGTH],
        body.len().to_string().as_str()
    );
}

#[tokio::test]
async fn off_means_untouched_and_no_routes() {
    let reload = AutoReload::builder().enabled(false).build();
    assert!(!reload.is_enabled());
    let (_, body) = call(through_layer(&reload, || html("<body></body>")), get("/")).await;
    assert_eq!(body, "<body></body>");

    let app = axum::Router::new()
        .merge(reload.router())
        .layer(reload.layer());
    for path in ["/auto_refresh", "/auto_refresh/client.js"] {
        let response = app.clone().oneshot(get(path)).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn the_router_serves_the_script_and_the_stream() {
    let reload = reload();
    let app: axum::Router = reload.router();
    let script = app
        .clone()
        .oneshot(get("/auto_refresh/client.js"))
        .await
        .expect("infallible");
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(
        script.headers()[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    let text = body_bytes(script.into_body()).await;
    assert!(std::str::from_utf8(&text)
        .expect("utf-8")
        .contains("SharedWorker"));

    let stream = app.oneshot(get("/auto_refresh")).await.expect("infallible");
    assert_eq!(stream.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = stream.into_body();
    let first = body
        .frame()
        .await
        .expect("a frame")
        .expect("ok")
        .into_data()
        .expect("data");
    let first = String::from_utf8(first.to_vec()).expect("utf-8");
    assert_eq!(
        first,
        format!(
            "event: hello\ndata: {}\nretry: 100\n\n",
            reload.instance_id()
        )
    );
    assert_eq!(reload.open_streams(), 1);
    drop(body);
    assert_eq!(reload.open_streams(), 0);
}

#[tokio::test]
async fn a_chosen_predicate_picks_the_pages() {
    use axum_autoreload::{HtmlPages, Predicate};

    /// XHTML too, and nothing under `/embed`.
    #[derive(Clone)]
    struct Pages;

    impl Predicate for Pages {
        fn request<B>(&self, request: &Request<B>) -> bool {
            HtmlPages.request(request) && !request.uri().path().starts_with("/embed")
        }

        fn response<B>(&self, response: &Response<B>) -> bool {
            HtmlPages.response(response)
                || response.headers()[header::CONTENT_TYPE] == "application/xhtml+xml"
        }
    }

    let reload = reload();
    let xhtml = || {
        Response::builder()
            .header(header::CONTENT_TYPE, "application/xhtml+xml")
            .body(Body::from("<body></body>"))
            .expect("response")
    };
    let through = |make: fn() -> Response<Body>| {
        let inner =
            service_fn(move |_req: Request<Body>| async move { Ok::<_, Infallible>(make()) });
        reload
            .layer()
            .inject_when(Pages)
            .layer(inner)
            .map_response(|r| r.map(Body::new))
    };
    let (_, body) = call(through(xhtml), get("/")).await;
    assert_eq!(body, format!("<body>{}</body>", tag(&reload)));
    let (_, body) = call(through(|| html("<body></body>")), get("/")).await;
    assert_eq!(body, format!("<body>{}</body>", tag(&reload)));
    let (_, body) = call(through(|| html("<body></body>")), get("/embed/x")).await;
    assert_eq!(body, "<body></body>", "the request ruled it out");
    // The default leaves XHTML alone.
    let (_, body) = call(through_layer(&reload, xhtml), get("/")).await;
    assert_eq!(body, "<body></body>");
}

/// An event stream: one event, then nothing until the body is dropped.
fn event_stream() -> Response<Body> {
    use futures_util::StreamExt as _;
    let first = futures_util::stream::once(async {
        Ok::<_, Infallible>(Bytes::from_static(b"data: 1\n\n"))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(
            first.chain(futures_util::stream::pending()),
        ))
        .expect("response")
}

#[tokio::test(start_paused = true)]
async fn event_streams_end_at_shutdown_unless_kept_open() {
    use axum_autoreload::KeepStreamOpen;
    use http_body::Body as _;

    let reload = AutoReload::builder().enabled(false).build();
    let open = |make: fn() -> Response<Body>| {
        let service = through_layer(&reload, make);
        async move {
            let mut body = service
                .oneshot(get("/events"))
                .await
                .expect("infallible")
                .into_body();
            let first = body.frame().await.expect("a frame").expect("ok");
            assert_eq!(first.into_data().expect("data"), "data: 1\n\n");
            body
        }
    };
    let mut plain = open(event_stream).await;
    let mut kept = open(|| {
        let mut response = event_stream();
        response.extensions_mut().insert(KeepStreamOpen);
        response
    })
    .await;
    let quiet = tokio::time::timeout(Duration::from_secs(3600), plain.frame()).await;
    assert!(quiet.is_err(), "open before the shutdown");

    reload.shutdown_signal().trigger();
    assert!(plain.frame().await.is_none(), "ended at the shutdown");
    assert!(plain.is_end_stream());
    let quiet = tokio::time::timeout(Duration::from_secs(3600), kept.frame()).await;
    assert!(quiet.is_err(), "KeepStreamOpen keeps it open");
    // A stream of known length is left to end by itself.
    let fixed = || {
        Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .body(Body::from("data: 1\n\n"))
            .expect("response")
    };
    let (_, body) = call(through_layer(&reload, fixed), get("/")).await;
    assert_eq!(body, "data: 1\n\n");
}

mod arbitrary_bodies {
    //! Property test over arbitrary bytes (invalid UTF-8 included) and arbitrary
    //! chunking, through the public layer: the output is the input with the tag
    //! once, before the first `</body` or at the end. The seed is fixed so CI runs
    //! the same cases every time; `PROPTEST_CASES` runs more.

    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    fn expected(body: &[u8], tag: &[u8]) -> Vec<u8> {
        let at = body
            .windows(6)
            .position(|w| w.eq_ignore_ascii_case(b"</body"))
            .unwrap_or(body.len());
        [&body[..at], tag, &body[at..]].concat()
    }

    fn through_layer(reload: &AutoReload, chunks: Vec<Vec<u8>>) -> Vec<u8> {
        let inner = service_fn(move |_req: Request<Body>| {
            let chunks = chunks.clone();
            async move {
                let stream = futures_util::stream::iter(
                    chunks
                        .into_iter()
                        .map(|c| Ok::<_, Infallible>(Bytes::from(c))),
                );
                Ok::<_, Infallible>(
                    Response::builder()
                        .header(header::CONTENT_TYPE, "text/html")
                        .body(Body::from_stream(stream))
                        .expect("response"),
                )
            }
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let response = reload
                .layer()
                .layer(inner)
                .oneshot(get("/"))
                .await
                .expect("infallible");
            body_bytes(Body::new(response.into_body())).await
        })
    }

    proptest! {
        #![proptest_config(Config {
            cases: 512,
            rng_seed: RngSeed::Fixed(0x5eed_a11e),
            failure_persistence: None,
            ..Config::default()
        })]

        #[test]
        fn any_bytes_any_chunks(
            chunks in proptest::collection::vec(
                prop_oneof![
                    3 => proptest::collection::vec(any::<u8>(), 0..64),
                    1 => Just(b"</body>".to_vec()),
                    1 => Just(b"</BoD".to_vec()),
                    1 => Just(b"y>\xff\xfe<".to_vec()),
                ],
                0..16,
            )
        ) {
            let reload = AutoReload::builder().enabled(true).build();
            let body = chunks.concat();
            let out = through_layer(&reload, chunks);
            prop_assert_eq!(out, expected(&body, reload.script_tag().as_bytes()));
        }
    }
}

#[tokio::test]
async fn validators_go_and_head_gets_the_get_length() {
    let reload = reload();
    let make = || {
        Response::builder()
            .header(header::CONTENT_TYPE, "text/html")
            .header(header::CONTENT_LENGTH, 13)
            .header(header::ETAG, "\"abc\"")
            .header(header::LAST_MODIFIED, "Mon, 23 Nov 2026 10:00:00 GMT")
            .body(Body::from("<body></body>"))
            .expect("response")
    };
    let (response, body) = call(through_layer(&reload, make), get("/")).await;
    assert_eq!(body.len(), 13 + reload.script_tag().len());
    assert!(response.headers().get(header::ETAG).is_none());
    assert!(response.headers().get(header::LAST_MODIFIED).is_none());

    let head_response = || {
        Response::builder()
            .header(header::CONTENT_TYPE, "text/html")
            .header(header::CONTENT_LENGTH, 13)
            .body(Body::empty())
            .expect("response")
    };
    let head = Request::head("/").body(Body::empty()).expect("request");
    let (response, body) = call(through_layer(&reload, head_response), head).await;
    assert_eq!(body, "", "a HEAD body stays empty");
    assert_eq!(
        response.headers()[header::CONTENT_LENGTH],
        (13 + reload.script_tag().len()).to_string().as_str()
    );
}
