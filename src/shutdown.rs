//! The shutdown signal that long-lived handlers watch, and the mark of a response
//! (an event stream, an upgraded connection) that outlives it.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::response::{IntoResponseParts, ResponseParts};
use http::request::Parts;
use http::StatusCode;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Fires once when the server begins its graceful shutdown (SIGINT, SIGTERM,
/// [`crate::Serve::with_graceful_shutdown`]'s future, or
/// [`ShutdownSignal::trigger`]).
///
/// The reload streams end on it, and so do the app's own `text/event-stream`
/// responses behind [`crate::AutoReload::layer`]. Other long-lived handlers (a long
/// poll) should end on it too: [`crate::serve()`] waits for them until its drain
/// deadline. A WebSocket that has not ended [`crate::serve()`] closes after a
/// short grace ([`crate::Serve::upgrade_grace`]); ending it on this signal lets it
/// say goodbye first. Cheap to clone: every clone observes the same signal.
///
/// A handler behind [`crate::AutoReload::layer`] gets it as an extractor; without
/// the layer, the extractor answers `500 Internal Server Error`.
///
/// # Examples
///
/// A WebSocket split between two tasks, as in axum's `examples/chat`, whose
/// sending task sends a Close frame with 1012 (service restart) when the shutdown
/// begins; the browser then reconnects to the next process:
///
/// ```
/// use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket};
/// use axum_autoreload::ShutdownSignal;
/// use futures_util::{SinkExt, StreamExt};
/// use tokio::sync::broadcast;
///
/// async fn chat(socket: WebSocket, mut news: broadcast::Receiver<String>, shutdown: ShutdownSignal) {
///     let (mut sender, mut receiver) = socket.split();
///     let mut sending = tokio::spawn(async move {
///         loop {
///             tokio::select! {
///                 () = shutdown.triggered() => {
///                     let close = CloseFrame { code: close_code::RESTART, reason: "restart".into() };
///                     let _ = sender.send(Message::Close(Some(close))).await;
///                     break;
///                 }
///                 next = news.recv() => {
///                     let Ok(text) = next else { break };
///                     if sender.send(Message::text(text)).await.is_err() {
///                         break;
///                     }
///                 }
///             }
///         }
///     });
///     let mut receiving = tokio::spawn(async move {
///         while let Some(Ok(_message)) = receiver.next().await {}
///     });
///     tokio::select! {
///         _ = &mut sending => receiving.abort(),
///         _ = &mut receiving => sending.abort(),
///     }
/// }
/// ```
#[derive(Clone, Debug, Default)]
pub struct ShutdownSignal {
    // Behind an `Arc`: the layer's service, and with it this signal, is cloned for
    // every request, and a `CancellationToken`'s own clone and drop lock a mutex
    // shared by every stream.
    token: Arc<CancellationToken>,
}

impl ShutdownSignal {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Completes once the shutdown has begun; at once if it already has. Cancel
    /// safe: dropping the future loses nothing.
    pub fn triggered(&self) -> impl Future<Output = ()> + Send + '_ {
        self.token.cancelled()
    }

    /// Like [`ShutdownSignal::triggered`], but owns a clone of the signal, for use
    /// in `'static` futures and streams.
    pub async fn triggered_owned(self) {
        self.triggered_future().await;
    }

    /// Run `future` until it completes or the shutdown begins, whichever comes
    /// first; `None` when the shutdown came first (`future` is then dropped, which
    /// for a WebSocket closes the connection without a Close frame: the browser
    /// sees code 1006).
    pub async fn run_until<F: Future>(self, future: F) -> Option<F::Output> {
        tokio::select! {
            output = future => Some(output),
            () = self.token.cancelled() => None,
        }
    }

    /// [`ShutdownSignal::triggered_owned`] as a named type, to keep in a struct.
    pub(crate) fn triggered_future(&self) -> WaitForCancellationFutureOwned {
        CancellationToken::clone(&self.token).cancelled_owned()
    }

    /// Whether `other` is this signal (a clone of it), not another one.
    pub(crate) fn is_same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.token, &other.token)
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

impl<S: Send + Sync> FromRequestParts<S> for ShutdownSignal {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Self>().cloned().ok_or((
            StatusCode::INTERNAL_SERVER_ERROR,
            "no ShutdownSignal in the request: serve the app with axum_autoreload::serve, or add AutoReload::layer() around it\n",
        ))
    }
}

/// Marks a response that stays open when the shutdown begins: a
/// `text/event-stream` response that [`crate::AutoReload::layer`] then leaves open,
/// or an upgrade (`101 Switching Protocols`, a WebSocket) that [`crate::serve()`]
/// then does not close after its upgrade grace ([`crate::Serve::upgrade_grace`]).
/// Such a stream holds the shutdown until it ends or the drain deadline passes
/// ([`crate::Serve::drain_deadline`]).
///
/// In an axum handler, return it beside the response; elsewhere, insert it in the
/// response's extensions.
///
/// # Examples
///
/// An event stream:
///
/// ```
/// use std::convert::Infallible;
/// use axum::response::sse::{Event, Sse};
/// use axum::response::IntoResponse;
/// use axum_autoreload::KeepStreamOpen;
///
/// async fn log_tail() -> impl IntoResponse {
///     let events = futures_util::stream::pending::<Result<Event, Infallible>>();
///     (KeepStreamOpen, Sse::new(events))
/// }
/// ```
///
/// A WebSocket that finishes its work before it closes, however long the
/// shutdown lets it:
///
/// ```
/// use axum::extract::ws::{WebSocket, WebSocketUpgrade};
/// use axum::response::IntoResponse;
/// use axum_autoreload::KeepStreamOpen;
///
/// async fn upload(upgrade: WebSocketUpgrade) -> impl IntoResponse {
///     (KeepStreamOpen, upgrade.on_upgrade(receive_all))
/// }
/// # async fn receive_all(_socket: WebSocket) {}
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct KeepStreamOpen;

impl IntoResponseParts for KeepStreamOpen {
    type Error = Infallible;

    fn into_response_parts(self, mut parts: ResponseParts) -> Result<ResponseParts, Infallible> {
        parts.extensions_mut().insert(self);
        Ok(parts)
    }
}
