//! The reload paths ([`crate::protocol`]): the stream, the client scripts, the
//! status document, the trigger and the timing line, as a router that the layer
//! ([`crate::inject`]) answers ahead of the app.

use std::sync::Arc;

use axum::extract::Query;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

use crate::allowed_hosts::AllowedHostsLayer;
use crate::client;
use crate::instance::InstanceId;
use crate::protocol::{
    IDIOMORPH_PATH, SCRIPT_PATH, STATUS_PATH, STREAM_PATH, TIMING_PATH, TRIGGER_PATH, WORKER_PATH,
};
use crate::sse::{Broadcast, Broadcaster};
use crate::timing::Timing;

/// Whether `path` is one of the reload paths: [`STREAM_PATH`] or below it.
pub(crate) fn is_reload_path(path: &str) -> bool {
    path.strip_prefix(STREAM_PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The reload paths of one instance, each checking `allowed_hosts` with `Origin`
/// checked on every request. A path below [`STREAM_PATH`] that is none of them
/// gets 404.
pub(crate) fn router(
    broadcaster: &Broadcaster,
    instance: &InstanceId,
    timing: &Arc<Timing>,
    allowed_hosts: &AllowedHostsLayer,
) -> Router {
    let stream = broadcaster.clone();
    let status = (broadcaster.clone(), instance.clone());
    let trigger = broadcaster.clone();
    let timing = Arc::clone(timing);
    Router::new()
        .route(
            STREAM_PATH,
            get(move || std::future::ready(stream.response())),
        )
        .route(SCRIPT_PATH, get(client::script))
        .route(WORKER_PATH, get(client::worker))
        .route(IDIOMORPH_PATH, get(client::idiomorph))
        .route(
            STATUS_PATH,
            get(move || {
                let (broadcaster, instance) = &status;
                std::future::ready(json(format!(
                    "{{\"instance\":\"{instance}\",\"open_streams\":{}}}",
                    broadcaster.open_streams()
                )))
            }),
        )
        .route(
            TRIGGER_PATH,
            post(move |Query(query): Query<TriggerQuery>| {
                let event = match query.path.as_deref() {
                    Some(path) if !path.is_empty() => Broadcast::for_change(path),
                    _ => Broadcast::Reload,
                };
                let streams = trigger.send(&event);
                std::future::ready(json(format!("{{\"streams\":{streams}}}")))
            }),
        )
        .route(
            TIMING_PATH,
            post(move |Query(query)| std::future::ready(timing.response(query))),
        )
        .layer(allowed_hosts.clone().every_request())
}

/// The query of a `POST` to [`TRIGGER_PATH`].
#[derive(Debug, serde::Deserialize)]
struct TriggerQuery {
    /// The URL path of the file that changed; none reloads every tab.
    path: Option<String>,
}

fn json(body: String) -> impl IntoResponse {
    ([(http::header::CONTENT_TYPE, "application/json")], body)
}
