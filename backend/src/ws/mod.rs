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

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rookery_common::SUBPROTOCOL_JSON;

use crate::http::error::ApiError;
use crate::net::proxy::Client;
use crate::server::AppState;

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

pub async fn upgrade(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Err(refusal) = admit(&state, &client, &headers) {
        return refusal.into_response();
    }
    let limits = &state.config.limits;
    upgrade
        .protocols([SUBPROTOCOL_JSON])
        .read_buffer_size(limits.read_buffer_size)
        .write_buffer_size(limits.write_buffer_size)
        .max_message_size(limits.max_message_size)
        .max_frame_size(limits.max_message_size)
        .on_upgrade(move |socket| connection::serve(socket, state, client))
}
