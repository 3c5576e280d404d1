//! Messages that must reach the developer even in an app that set no `tracing`
//! subscriber.

/// `message` through `tracing` at `warn` (`warn: true`) or `info`, or on stderr,
/// prefixed `axum-autoreload: `, in an app that set no subscriber: it says
/// something nobody else would tell.
pub(crate) fn even_without_subscriber(warn: bool, message: &str) {
    if !tracing::dispatcher::has_been_set() {
        eprintln!("axum-autoreload: {message}");
    } else if warn {
        tracing::warn!("{message}");
    } else {
        tracing::info!("{message}");
    }
}
