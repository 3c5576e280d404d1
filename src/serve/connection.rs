//! One accepted connection: wait for its first bytes, then serve it as a reload
//! stream (`event_stream`) or through hyper.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use futures_util::future::Either;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tower::ServiceExt;

use super::event_stream;
use crate::guard::Guard;
use crate::AutoReload;

/// What every connection of one server needs.
#[derive(Debug)]
pub(super) struct Connect {
    pub(super) http: http1::Builder,
    pub(super) guard: Guard,
    pub(super) app: Router,
    pub(super) reload: AutoReload,
    pub(super) first_request_grace: Duration,
    pub(super) header_read_timeout: Duration,
}

pub(super) async fn serve(connect: Arc<Connect>, stream: TcpStream, remote: SocketAddr) {
    // Events are small writes that must go out at once.
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!("TCP_NODELAY on a connection from {remote}: {err}");
    }
    let mut first = [0; event_stream::PREFIX_LEN];
    let Some(peeked) = first_bytes(&stream, &connect, &mut first).await else {
        tracing::trace!("closing silent connection from {remote}");
        return;
    };
    if connect.reload.is_enabled() && event_stream::is_stream_prefix(&first[..peeked]) {
        if let Some(head_len) = event_stream::peek_request(&stream, &connect.guard).await {
            return event_stream::serve(stream, head_len, &connect.reload, remote).await;
        }
    }
    serve_http(connect, stream, remote).await;
}

/// Wait for the connection's first bytes (peeked: nothing is consumed) before any
/// buffer is given to it, so a connection that stays silent (a browser's
/// preconnect) costs no more than its socket and task. Peeks into `first` (as
/// long as a reload stream request's prefix) and returns how many bytes it holds;
/// `None` when the connection is to be
/// closed: the peer closed it, or it stayed silent for the header read timeout
/// or, once the shutdown has begun, for the first-request grace.
async fn first_bytes(stream: &TcpStream, connect: &Connect, first: &mut [u8]) -> Option<usize> {
    let peeked = {
        let peek = stream.peek(first);
        tokio::pin!(peek);
        tokio::select! {
            peeked = &mut peek => peeked,
            () = tokio::time::sleep(connect.header_read_timeout) => return None,
            () = connect.reload.shared.shutdown.triggered() => {
                // Accepted before the shutdown and still silent: its request may be
                // on its way.
                tokio::select! {
                    peeked = peek => peeked,
                    () = tokio::time::sleep(connect.first_request_grace) => return None,
                }
            }
        }
    };
    match peeked {
        Ok(0) | Err(_) => None,
        Ok(len) => Some(len),
    }
}

async fn serve_http(connect: Arc<Connect>, stream: TcpStream, remote: SocketAddr) {
    let first_request = Arc::new(Notify::new());
    let seen_request = Arc::new(AtomicBool::new(false));
    let service = {
        let first_request = Arc::clone(&first_request);
        let seen_request = Arc::clone(&seen_request);
        let connect = Arc::clone(&connect);
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            if !seen_request.swap(true, Ordering::AcqRel) {
                first_request.notify_one();
            }
            if let Some(refused) = connect.guard.check(&request) {
                tracing::warn!(
                    "refused {} {} from {remote}: Host {:?}, Origin {:?}",
                    request.method(),
                    request.uri().path(),
                    request.headers().get(http::header::HOST),
                    request.headers().get(http::header::ORIGIN),
                );
                return Either::Left(std::future::ready(Ok(refused)));
            }
            request.extensions_mut().insert(ConnectInfo(remote));
            Either::Right(connect.app.clone().oneshot(request))
        })
    };
    let connection = connect
        .http
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);

    let shutdown = &connect.reload.shared.shutdown;
    tokio::select! {
        result = connection.as_mut() => return log_end(remote, result),
        () = shutdown.triggered() => {}
    }
    if !seen_request.load(Ordering::Acquire) {
        // Bytes have arrived, but no whole request yet: hyper would close it at once
        // and reset a request that is on its way. Wait for it a little.
        tokio::select! {
            result = connection.as_mut() => return log_end(remote, result),
            () = first_request.notified() => {}
            () = tokio::time::sleep(connect.first_request_grace) => {
                tracing::trace!("closing silent connection from {remote}");
            }
        }
    }
    connection.as_mut().graceful_shutdown();
    log_end(remote, connection.await);
}

fn log_end(remote: SocketAddr, result: Result<(), hyper::Error>) {
    if let Err(err) = result {
        tracing::debug!("connection from {remote}: {err}");
    }
}
