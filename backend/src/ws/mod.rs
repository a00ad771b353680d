//! The `/ws` endpoint: the upgrade (origin check, socket limits) and the
//! per-socket task.
//!
//! - [`origin`]: the `Origin` allow-list.
//! - [`connection`]: one socket's task: commands in, deliveries out.
//! - [`heartbeat`]: when to ping and when to give up.
//! - [`session`]: what one connection's commands do.
//! - [`rate`]: the token bucket behind the publish and command limits.
//! - [`yjs`]: `/yjs/{note}`, the y-websocket protocol for standard Yjs editors.

pub mod connection;
pub mod heartbeat;
pub mod origin;
pub mod rate;
pub mod session;
pub mod yjs;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rookery_common::Encoding;

use crate::http::error::ApiError;
use crate::hub::outbox::Outbox;
use crate::net::proxy::Client;
use crate::server::AppState;
use crate::websocket::frame::Wire;
use crate::websocket::tcp::SharedTcp;
use crate::websocket::{Socket, handshake};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// What every WebSocket upgrade (`/ws` and `/yjs`) must pass: the server is
/// not shutting down, and the `Origin` is the server's own or allowed.
pub fn admit(state: &AppState, client: &Client, headers: &HeaderMap) -> Result<(), ApiError> {
    if state.is_shutting_down() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down; connect to another node",
        ));
    }
    if let Err(error) = state.config.allowed_origins.check(
        headers.get(header::ORIGIN),
        client.scheme,
        client.host.as_deref(),
    ) {
        tracing::info!(peer = %client.peer, client = %client.ip, origin = %error.origin, "refused websocket from a foreign origin");
        let only_the_scheme_differs = client.scheme == "http"
            && error.origin.strip_prefix("https://") == client.host.as_deref();
        if only_the_scheme_differs {
            // The usual cause: a proxy in front terminates TLS, and Rookery,
            // not trusting it, sees plain http.
            tracing::warn!(origin = %error.origin, "an https page was refused by this plain-http server: behind a TLS-terminating proxy, list it in --trusted-proxies");
        }
        crate::metrics::Metrics::bump(&state.metrics.n_connections_refused_origin);
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            error.to_string(),
        ));
    }
    Ok(())
}

/// `/ws`: the handshake is checked and answered here, and the connection
/// served by [`connection::serve`] on Rookery's own WebSocket layer.
pub async fn upgrade(State(state): State<AppState>, client: Client, request: Request) -> Response {
    if let Err(refusal) = admit(&state, &client, request.headers()) {
        return refusal.into_response();
    }
    let handshake = match handshake::check(
        request.method(),
        request.version(),
        request.headers(),
        &Encoding::ALL.map(Encoding::subprotocol),
        state.config.websocket_compression,
    ) {
        Ok(handshake) => handshake,
        Err(refusal) => return refusal.into_response(),
    };
    let wire = Wire {
        encoding: handshake
            .protocol
            .and_then(Encoding::from_subprotocol)
            .unwrap_or_default(),
        deflate: handshake.deflate.is_some(),
    };
    let max_message = state.config.limits.max_message_size;
    let capacity = state.config.limits.outbound_queue;
    let upgraded = hyper::upgrade::on(request);
    tokio::spawn(async move {
        match upgraded.await {
            // Plain TCP: the socket itself, kept in the outbox for the
            // flusher. Anything else (TLS) through hyper's stream.
            Ok(upgraded) => match upgraded.downcast::<TokioIo<TcpStream>>() {
                Ok(parts) => {
                    let queue = Outbox::with_socket(capacity, wire, parts.io.into_inner());
                    let tcp = queue.1.socket().expect("a queue with a socket");
                    let mut socket = Socket::new(SharedTcp(tcp), max_message).speaking(wire);
                    socket.preload(&parts.read_buf);
                    // hyper's read buffer (8 KiB): not kept for the
                    // connection's life.
                    drop(parts.read_buf);
                    connection::serve(socket, queue, true, state, client).await;
                }
                Err(upgraded) => {
                    let queue = Outbox::for_wire(capacity, wire);
                    let socket = Socket::new(TokioIo::new(upgraded), max_message).speaking(wire);
                    connection::serve(socket, queue, false, state, client).await;
                }
            },
            Err(error) => tracing::debug!(%error, "websocket upgrade failed"),
        }
    });
    handshake.response()
}
