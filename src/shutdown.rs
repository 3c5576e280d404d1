//! The shutdown signal that long-lived handlers watch.

use tokio_util::sync::{
    CancellationToken, WaitForCancellationFuture, WaitForCancellationFutureOwned,
};

/// Fires once when the server begins its graceful shutdown (SIGINT, SIGTERM or
/// [`ShutdownSignal::trigger`]).
///
/// The reload streams end on it; an app's own long-lived handlers (its server-sent
/// event streams, WebSockets) should end on it too, or they hold the drain until its
/// deadline. Cheap to clone: every clone observes the same signal.
///
/// # Examples
///
/// ```
/// # async fn example(shutdown: axum_autoreload::ShutdownSignal) {
/// tokio::select! {
///     _ = shutdown.triggered() => { /* send a goodbye, close the socket */ }
///     _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
/// }
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct ShutdownSignal {
    token: CancellationToken,
}

impl ShutdownSignal {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Completes once the shutdown has begun; at once if it already has.
    pub fn triggered(&self) -> WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }

    /// Like [`ShutdownSignal::triggered`], but owns a clone of the signal, for use
    /// in `'static` futures and streams.
    pub async fn triggered_owned(self) {
        self.triggered_future().await;
    }

    /// [`ShutdownSignal::triggered_owned`] as a named type, to keep in a struct.
    pub(crate) fn triggered_future(&self) -> WaitForCancellationFutureOwned {
        self.token.clone().cancelled_owned()
    }

    /// Whether the shutdown has begun.
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Begin the graceful shutdown, as SIGINT would. Calling it again does nothing.
    pub fn trigger(&self) {
        self.token.cancel();
    }
}
