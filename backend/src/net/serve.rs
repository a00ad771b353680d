//! The HTTP/1.1 serve loop: what `axum::serve` does, plus a deadline for
//! each request head.
//!
//! `axum::serve` gives hyper no timer, so hyper's header read timeout never
//! runs: a client that sends its request one byte at a time (slowloris), or
//! nothing at all, holds a connection and its file descriptor for as long as
//! it likes, and a few thousand of them exhaust the node. Here every
//! connection must deliver each request head (the first, and each next one
//! on a kept-alive connection) within `header_timeout`, or it is closed.
//! Once a request is upgraded to a WebSocket, the socket's own deadlines
//! (`connect` within the connect timeout, pongs) take over.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::extract::Request;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::watch;
use tower::ServiceExt;

/// Serves `router` on `listener` until `shutdown` completes, then stops
/// accepting, lets requests in progress finish and returns once every HTTP
/// connection has ended (upgraded WebSockets live on in their own tasks).
pub async fn serve<L>(
    mut listener: L,
    router: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) where
    L: Listener<Addr = SocketAddr>,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    // Dropping `stop` asks every connection to finish; each holds a clone
    // of `running`, so `running.closed()` tells when the last one ended.
    let (stop, stopped) = watch::channel(());
    let (running, _) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let service = router
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                // What axum's `into_make_service_with_connect_info` adds:
                // `net::proxy` reads the peer address from here.
                request.extensions_mut().insert(ConnectInfo(peer));
                request.map(Body::new)
            });
        let connection = http
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
            .with_upgrades();
        let mut stopped = stopped.clone();
        let alive = running.subscribe();
        tokio::spawn(async move {
            let mut connection = pin!(connection);
            tokio::select! {
                served = connection.as_mut() => log_end(peer, served),
                _ = stopped.changed() => {
                    connection.as_mut().graceful_shutdown();
                    log_end(peer, connection.await);
                }
            }
            drop(alive);
        });
    }
    drop(listener);
    drop(stop);
    running.closed().await;
}

fn log_end(peer: SocketAddr, served: Result<(), hyper::Error>) {
    if let Err(error) = served {
        // A timed-out head, a reset, a malformed request: the client's
        // problem, already answered (400/431) where HTTP allows it.
        tracing::debug!(%peer, %error, "HTTP connection ended");
    }
}
