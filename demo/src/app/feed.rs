//! The live feed: the page, the form's endpoint and the event stream that pushes
//! the rendered list of posts to every open tab whenever a post is added.
//!
//! One rendered snapshot of the newest posts lives in a `tokio::sync::watch`
//! channel: the page is rendered from it, every stream sends it when it opens and
//! again each time it changes. Nothing polls.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use futures_util::{Stream, StreamExt};
use maud::Markup;
use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;

use super::feed_view::{self, FormState, FEED_EVENT, PAGE_PATH};
use super::form::{self, BodyError, Client, FieldErrors};
use super::store::{NewPost, Post, PostStore, StoreError};

/// How many posts the feed shows: the newest ones.
pub(crate) const RECENT: usize = 50;
/// The largest request body `POST /posts` accepts, in bytes; a larger one gets 413.
pub(crate) const MAX_BODY_BYTES: usize = 16 * 1024;
/// How long a browser waits before it reconnects a feed stream that ended (the
/// `retry` field of server-sent events).
const RETRY: Duration = Duration::from_millis(250);

/// The feed's shared state. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Feed {
    store: Arc<dyn PostStore>,
    snapshot: watch::Sender<Snapshot>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("latest", &self.snapshot.borrow().latest)
            .field("streams", &self.snapshot.receiver_count())
            .finish_non_exhaustive()
    }
}

/// The rendered list of the newest posts.
#[derive(Clone, Debug)]
struct Snapshot {
    /// Id of the newest post in it (0 when there is none): a snapshot replaces
    /// another only when it is newer.
    latest: i64,
    html: Arc<str>,
}

impl Snapshot {
    fn render(posts: &[Post]) -> Self {
        Self {
            latest: posts.first().map_or(0, |post| post.id),
            html: feed_view::posts(posts).into_string().into(),
        }
    }
}

impl Feed {
    /// A feed over `store`.
    pub(crate) async fn new(store: Arc<dyn PostStore>) -> Result<Self, StoreError> {
        let reader = Arc::clone(&store);
        let posts = blocking(move || reader.recent(RECENT)).await?;
        let (snapshot, _) = watch::channel(Snapshot::render(&posts));
        Ok(Self { store, snapshot })
    }

    fn current(&self) -> Snapshot {
        self.snapshot.borrow().clone()
    }

    /// Store `post`, then push the new list to every stream.
    async fn add(&self, post: NewPost) -> Result<Post, StoreError> {
        let store = Arc::clone(&self.store);
        let (post, recent) = blocking(move || {
            let post = store.add(post)?;
            Ok((post, store.recent(RECENT)?))
        })
        .await?;
        let snapshot = Snapshot::render(&recent);
        // Two posts at once: whichever list is read last holds both, and only a
        // newer list replaces the current one.
        self.snapshot.send_if_modified(|current| {
            let newer = snapshot.latest > current.latest;
            if newer {
                *current = snapshot;
            }
            newer
        });
        Ok(post)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|err| Err(StoreError::from_task(&err)))
}

/// `GET /posts`: the feed page. `?stream=direct` makes the tab open its own event
/// stream instead of sharing one through a `SharedWorker` (to compare).
pub(crate) async fn page(State(feed): State<Feed>, uri: Uri) -> Markup {
    let direct = uri
        .query()
        .is_some_and(|query| query.split('&').any(|pair| pair == "stream=direct"));
    feed_view::page(&feed.current().html, &FormState::default(), !direct)
}

/// `GET /posts/events`: server-sent events. Each `feed` event carries the rendered
/// list of posts (`<ol id="posts">`): one when the stream opens, one after each new
/// post. The library's layer ends the stream when the server shuts down; the
/// browser reconnects after 250 ms, to the next process.
pub(crate) async fn events(
    State(feed): State<Feed>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = WatchStream::new(feed.snapshot.subscribe()).map(|snapshot| {
        Ok(Event::default()
            .event(FEED_EVENT)
            .retry(RETRY)
            .data(&*snapshot.html))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// `POST /posts`: add a post, from a form (`application/x-www-form-urlencoded`,
/// fields `username` and `message`) or JSON (`{"username": .., "message": ..}`).
///
/// | outcome | htmx (`HX-Request`) | plain form | JSON |
/// | --- | --- | --- | --- |
/// | stored | 201, empty | 303 to `/posts` | 201, the post |
/// | invalid | 422, the form with its errors (`HX-Retarget: #post-form`, `HX-Reswap: morph`) | 422, the page | 422, `{"errors": {field: text}}` |
///
/// A body over 16 KiB gets 413, one of another type 415, a malformed one 400.
pub(crate) async fn create(State(feed): State<Feed>, headers: HeaderMap, body: Bytes) -> Response {
    let client = Client::of(&headers);
    let raw = match form::parse(&headers, &body) {
        Ok(raw) => raw,
        Err(err) => {
            let status = match err {
                BodyError::UnsupportedType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                BodyError::Malformed(_) => StatusCode::BAD_REQUEST,
            };
            return error(client, status, &err.to_string());
        }
    };
    let new_post = match form::validate(&raw) {
        Ok(post) => post,
        Err(errors) => {
            let state = FormState {
                username: raw.username.unwrap_or_default(),
                message: raw.message.unwrap_or_default(),
                errors,
            };
            return invalid(client, &feed, state);
        }
    };
    match feed.add(new_post).await {
        Ok(post) => match client {
            Client::Htmx => StatusCode::CREATED.into_response(),
            Client::Browser => Redirect::to(PAGE_PATH).into_response(),
            Client::Json => (StatusCode::CREATED, Json(post)).into_response(),
        },
        Err(err) => {
            tracing::error!("storing a post: {err}");
            error(
                client,
                StatusCode::INTERNAL_SERVER_ERROR,
                "the post could not be stored",
            )
        }
    }
}

fn invalid(client: Client, feed: &Feed, state: FormState) -> Response {
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    match client {
        Client::Htmx => (
            status,
            [
                ("hx-retarget", HeaderValue::from_static("#post-form")),
                ("hx-reswap", HeaderValue::from_static("morph")),
            ],
            feed_view::form(&state),
        )
            .into_response(),
        Client::Browser => {
            (status, feed_view::page(&feed.current().html, &state, true)).into_response()
        }
        Client::Json => (
            status,
            Json(JsonErrors {
                errors: state.errors,
            }),
        )
            .into_response(),
    }
}

#[derive(serde::Serialize)]
struct JsonErrors {
    errors: FieldErrors,
}

fn error(client: Client, status: StatusCode, message: &str) -> Response {
    match client {
        Client::Json => (status, Json(serde_json::json!({ "error": message }))).into_response(),
        Client::Htmx | Client::Browser => (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{message}\n"),
        )
            .into_response(),
    }
}

impl StoreError {
    fn from_task(err: &tokio::task::JoinError) -> Self {
        Self::new(format!("store task failed: {err}"))
    }
}
