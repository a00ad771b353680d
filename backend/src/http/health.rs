//! Liveness, readiness and the app's runtime settings.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::config::Tiles;
use crate::server::AppState;

/// The process is up.
pub async fn healthz() -> &'static str {
    "ok"
}

/// The node takes new connections; 503 while shutting down, and in a
/// cluster while Redis cannot be reached, so load balancers send traffic
/// elsewhere (its clients stay connected meanwhile).
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.is_shutting_down() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    } else if state
        .cluster
        .as_ref()
        .is_some_and(|cluster| !cluster.is_ready())
    {
        (StatusCode::SERVICE_UNAVAILABLE, "redis unreachable")
    } else {
        (StatusCode::OK, "ready")
    }
}

/// Prometheus exposition.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let (stats, n_followed) = state
        .hub
        .with(|hub| (hub.stats(), hub.synced_channels().len()));
    let mut body = state.metrics.render(&stats, state.n_sockets());
    if let Some(cluster) = &state.cluster {
        body += &format!(
            "# HELP rookery_cluster_ready 1 while this node follows Redis and reaches it.\n\
             # TYPE rookery_cluster_ready gauge\n\
             rookery_cluster_ready {}\n\
             # HELP rookery_cluster_followed_channels Channels this node follows on Redis.\n\
             # TYPE rookery_cluster_followed_channels gauge\n\
             rookery_cluster_followed_channels {n_followed}\n",
            u8::from(cluster.is_ready()),
        );
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

/// Settings the web app reads at start.
pub async fn client_config(State(state): State<AppState>) -> impl IntoResponse {
    let limits = &state.config.limits;
    let tiles = match &state.config.tiles {
        Tiles::Url {
            template,
            attribution,
        } => json!({ "url": template, "attribution": attribution }),
        Tiles::None => json!("none"),
    };
    // What the map's client-side throttle and staleness follow.
    let map = state.config.namespaces.get("map").map(|map| {
        json!({
            "min_interval_ms": map.min_interval.as_millis() as u64,
            "min_distance_m": map.min_distance_m,
            "value_ttl_ms": map.value_ttl.as_millis() as u64,
        })
    });
    Json(json!({
        "max_message_size": limits.max_message_size,
        "ping_interval_ms": limits.ping_interval.as_millis() as u64,
        "tiles": tiles,
        "map": map,
    }))
}
