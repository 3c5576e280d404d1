//! One accepted connection, served by hyper: its requests go through the guarded
//! app, with the first-request grace at shutdown; an upgraded connection is waited
//! for until the app drops it, or until the upgrade grace after the shutdown
//! began, when the server closes it ([`super::upgrade`]).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use http::Method;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Notify};
use tower::ServiceExt;

use tower::util::BoxCloneSyncService;

use super::upgrade::Upgrade;
use crate::shutdown::ShutdownSignal;

/// The app as every connection serves it: behind the allowed hosts, the panic page
/// and the layer.
pub(super) type App = BoxCloneSyncService<Request, Response, Infallible>;

/// What every connection of one server needs.
#[derive(Debug)]
pub(super) struct Connect {
    pub(super) http: http1::Builder,
    pub(super) app: App,
    pub(super) shutdown: ShutdownSignal,
    pub(super) first_request_grace: Duration,
    pub(super) upgrade_grace: Duration,
}

/// What the server knows of one open connection while it runs.
#[derive(Debug)]
pub(super) struct Tracked {
    pub(super) remote: SocketAddr,
    /// The method and path of the request served last, or being served: hyper
    /// serves one request of a connection at a time. The path is copied: a `Uri`
    /// would keep hyper's read buffer alive, so hyper would allocate a new one.
    /// The `String` is reused from one request of the connection to the next.
    last_request: Mutex<Option<(Method, String)>>,
    /// Handed to the app by an upgrade (a WebSocket).
    upgraded: AtomicBool,
}

impl Tracked {
    pub(super) fn new(remote: SocketAddr) -> Self {
        Self {
            remote,
            last_request: Mutex::default(),
            upgraded: AtomicBool::new(false),
        }
    }

    /// Note the request the connection serves now.
    fn serving<B>(&self, request: &http::Request<B>) {
        let mut last = self
            .last_request
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (method, path) = last.get_or_insert_with(|| (Method::GET, String::new()));
        method.clone_from(request.method());
        path.clear();
        path.push_str(request.uri().path());
    }

    /// What holds the connection: `GET /events`, `GET /ws (upgraded)`, or `no
    /// request` for one that has sent none.
    pub(super) fn holder(&self) -> String {
        let last = self
            .last_request
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match &*last {
            None => "no request".to_owned(),
            Some((method, path)) if self.upgraded.load(Ordering::Relaxed) => {
                format!("{method} {path} (upgraded)")
            }
            Some((method, path)) => format!("{method} {path}"),
        }
    }
}

/// Set once the connection's first request head has been read.
#[derive(Debug, Default)]
struct FirstRequest {
    seen: AtomicBool,
    arrived: Notify,
}

impl FirstRequest {
    fn mark(&self) {
        if !self.seen.swap(true, Ordering::AcqRel) {
            self.arrived.notify_waiters();
        }
    }

    fn seen(&self) -> bool {
        self.seen.load(Ordering::Acquire)
    }

    async fn arrived(&self) {
        let arrived = self.arrived.notified();
        if !self.seen() {
            arrived.await;
        }
    }
}

pub(super) async fn serve(connect: Arc<Connect>, stream: TcpStream, tracked: Arc<Tracked>) {
    let remote = tracked.remote;
    // Events are small writes that must go out at once.
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!("TCP_NODELAY on a connection from {remote}: {err}");
    }
    let (alive, mut dropped) = oneshot::channel();
    let upgrade = Arc::new(Upgrade::default());
    let io = TokioIo::new(Watched {
        stream,
        upgrade: Arc::clone(&upgrade),
        _alive: alive,
    });
    let first = Arc::new(FirstRequest::default());
    let service = {
        let app = connect.app.clone();
        let first = Arc::clone(&first);
        let tracked = Arc::clone(&tracked);
        let upgrade = Arc::clone(&upgrade);
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            first.mark();
            tracked.serving(&request);
            request.extensions_mut().insert(ConnectInfo(remote));
            let upgrade = Arc::clone(&upgrade);
            let response = app.clone().oneshot(request.map(Body::new));
            async move {
                let response = response.await;
                if let Ok(response) = &response {
                    upgrade.responded(response);
                }
                response
            }
        })
    };
    let result = {
        let connection = connect.http.serve_connection(io, service).with_upgrades();
        tokio::pin!(connection);
        let mut ended = tokio::select! {
            result = connection.as_mut() => Some(result),
            () = connect.shutdown.triggered() => None,
        };
        if ended.is_none() && !first.seen() {
            // Accepted before the shutdown and silent, or bytes have arrived but no
            // whole request yet: hyper would close it at once and reset a request
            // that is on its way. Wait for it a little.
            ended = tokio::select! {
                result = connection.as_mut() => Some(result),
                () = first.arrived() => None,
                () = tokio::time::sleep(connect.first_request_grace) => None,
            };
        }
        match ended {
            Some(result) => result,
            None => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        }
        // The connection, and with it the socket unless an upgrade took it, is
        // dropped here.
    };
    if let Err(err) = result {
        tracing::debug!("connection from {remote}: {err}");
    }
    if matches!(dropped.try_recv(), Err(oneshot::error::TryRecvError::Empty)) {
        tracked.upgraded.store(true, Ordering::Relaxed);
        upgraded(&connect, &tracked, &upgrade, dropped).await;
    }
}

/// The socket was handed to the app by an upgrade: wait until the app drops it,
/// or close it once the shutdown has begun and the upgrade grace has passed
/// (unless the app keeps it open, [`crate::KeepStreamOpen`]).
async fn upgraded(
    connect: &Connect,
    tracked: &Tracked,
    upgrade: &Upgrade,
    mut dropped: oneshot::Receiver<Infallible>,
) {
    if upgrade.closable() {
        let grace = async {
            connect.shutdown.triggered().await;
            tokio::time::sleep(connect.upgrade_grace).await;
        };
        tokio::select! {
            _ = &mut dropped => return,
            () = grace => {}
        }
        if let Some(closing) = upgrade.close() {
            let (remote, holder) = (tracked.remote, tracked.holder());
            tracing::debug!("closed the connection from {remote}, {holder}, {closing}");
            return;
        }
    }
    let _ = dropped.await;
}

/// The connection's socket, what the server knows of its writes for an upgrade,
/// and a sender whose drop tells when the socket is dropped: with the connection,
/// or, after an upgrade, by the app.
#[derive(Debug)]
struct Watched {
    stream: TcpStream,
    upgrade: Arc<Upgrade>,
    _alive: oneshot::Sender<Infallible>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let Self {
            stream, upgrade, ..
        } = self.get_mut();
        upgrade.write(&[io::IoSlice::new(buf)], || {
            Pin::new(stream).poll_write(cx, buf)
        })
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let Self {
            stream, upgrade, ..
        } = self.get_mut();
        upgrade.write(bufs, || Pin::new(stream).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.stream).poll_flush(cx);
        if let Poll::Ready(Ok(())) = flushed {
            self.upgrade.flushed(&self.stream);
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.upgrade.is_closed() {
            // The server has shut it down already.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
