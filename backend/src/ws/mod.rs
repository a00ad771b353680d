//! The `/ws` endpoint: the upgrade (origin check, socket limits) and the
//! per-socket task.
//!
//! - [`origin`]: the `Origin` allow-list.
//! - [`connection`]: one socket's reader and writer.
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

use std::net::SocketAddr;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rookery_common::SUBPROTOCOL_JSON;

use crate::http::error::ApiError;
use crate::server::AppState;

pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if state.is_shutting_down() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down; connect to another node",
        )
        .into_response();
    }
    if let Err(error) = state
        .config
        .allowed_origins
        .check(headers.get(header::ORIGIN), headers.get(header::HOST))
    {
        tracing::info!(%peer, origin = %error.origin, "refused websocket from a foreign origin");
        crate::metrics::Metrics::bump(&state.metrics.n_connections_refused_origin);
        return ApiError::new(StatusCode::FORBIDDEN, "forbidden_origin", error.to_string())
            .into_response();
    }
    let limits = &state.config.limits;
    upgrade
        .protocols([SUBPROTOCOL_JSON])
        .read_buffer_size(limits.read_buffer_size)
        .write_buffer_size(limits.write_buffer_size)
        .max_message_size(limits.max_message_size)
        .max_frame_size(limits.max_message_size)
        .on_upgrade(move |socket| connection::serve(socket, state, peer))
}
