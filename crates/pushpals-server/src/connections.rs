//! Serving connections with bounds a client cannot stretch: a cap on open
//! connections, a deadline for each request's headers (which also closes
//! idle keep-alive connections) and a deadline for its body. A client that
//! connects and never finishes its request, or thousands of them, costs a
//! bounded amount and leaves the server answering everyone else.

use crate::client_addr::PeerAddr;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

/// How a server bounds its connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Open connections at most; one more is closed at once.
    pub max_connections: usize,
    /// A request's headers (or, on a kept-alive connection, the next
    /// request's) must arrive within this.
    pub header_timeout: Duration,
    /// A request's whole body must arrive within this.
    pub body_timeout: Duration,
}

impl ConnectionLimits {
    /// The limits `[server]` sets, the defaults for what it leaves out.
    pub fn from_settings(settings: &pushpals_orchestrator::ServerSettings) -> Self {
        let default = Self::default();
        Self {
            max_connections: settings
                .max_connections
                .unwrap_or(default.max_connections)
                .max(1),
            header_timeout: settings
                .header_timeout_secs
                .map_or(default.header_timeout, |s| Duration::from_secs(s.max(1))),
            body_timeout: settings
                .body_timeout_secs
                .map_or(default.body_timeout, |s| Duration::from_secs(s.max(1))),
        }
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 8192,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
        }
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` resolves,
/// then lets open requests finish (up to `drain`).
pub(crate) async fn serve_bounded<L>(
    mut listener: L,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Over the cap: closing at once keeps the rest answering.
            tracing::warn!(%peer, cap = limits.max_connections, "connection refused: too many open");
            drop(io);
            continue;
        };
        let service = app
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(PeerAddr(peer)));
                request.map(Body::new)
            });
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let connection = builder
                .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
                .with_upgrades();
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::trace!(%peer, %error, "connection ended");
                    }
                }
                _ = async { stop.wait_for(|stop| *stop).await.map(|_| ()) } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(slot);
        });
    }
    let _ = stop_tx.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(drain, slots.acquire_many(all)).await;
    Ok(())
}

/// Middleware: the request's body must arrive within the body deadline,
/// or reading it fails (a 400 from the extractor) and the connection is
/// given back.
pub async fn body_deadline(
    axum::extract::State(deadline): axum::extract::State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let until = tokio::time::Instant::now() + deadline;
    let chunks = body.into_data_stream();
    let bounded = futures_util::stream::unfold(Some(chunks), move |state| async move {
        let mut chunks = state?;
        match tokio::time::timeout_at(until, chunks.next()).await {
            Ok(Some(chunk)) => Some((chunk, Some(chunks))),
            Ok(None) => None,
            Err(_) => Some((
                Err(axum::Error::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "the request body did not arrive within {} s",
                        deadline.as_secs()
                    ),
                ))),
                None,
            )),
        }
    });
    next.run(Request::from_parts(parts, Body::from_stream(bounded)))
        .await
}
