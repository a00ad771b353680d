//! `POST /api/v1/publish`: one message to one or many channels.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use rookery_common::{ChannelName, StreamPosition};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use super::{ApiKey, parse_channel};
use crate::http::error::ApiError;
use crate::hub::{Publisher, unix_time_ms};
use crate::server::AppState;

/// Most channels one request may publish to.
const MAX_CHANNELS: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    channel: Option<String>,
    #[serde(default)]
    channels: Vec<String>,
    data: Value,
    idempotency_key: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PublishResponse {
    results: Vec<PublishResult>,
}

#[derive(Debug, Serialize)]
pub struct PublishResult {
    channel: ChannelName,
    /// Absent when the channel keeps no history.
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<StreamPosition>,
}

pub async fn publish(
    _: ApiKey,
    State(state): State<AppState>,
    request: Result<Json<PublishRequest>, JsonRejection>,
) -> Result<Json<PublishResponse>, ApiError> {
    let Json(request) = request.map_err(|rejection| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            rejection.body_text(),
        )
    })?;
    let names: Vec<&String> = request.channel.iter().chain(&request.channels).collect();
    if names.is_empty() {
        return Err(bad_request("give `channel` or `channels`"));
    }
    if names.len() > MAX_CHANNELS {
        return Err(bad_request(&format!(
            "at most {MAX_CHANNELS} channels per request"
        )));
    }
    if let Some(key) = &request.idempotency_key
        && (key.is_empty() || key.len() > 128)
    {
        return Err(bad_request("idempotency_key must be 1 to 128 bytes"));
    }
    // Validate every channel before publishing to any, so a bad request
    // publishes nothing.
    let channels = names
        .into_iter()
        .map(|name| parse_channel(name))
        .collect::<Result<Vec<_>, _>>()?;
    for channel in &channels {
        if state.config.namespaces.get(channel.namespace()).is_none() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                rookery_common::ErrorCode::UnknownNamespace.slug(),
                format!("no namespace {:?}", channel.namespace()),
            ));
        }
    }
    let size = serde_json::to_vec(&request.data).map_or(0, |bytes| bytes.len());
    if size > state.config.limits.max_message_size {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            rookery_common::ErrorCode::PayloadTooLarge.slug(),
            format!(
                "data is over {} bytes",
                state.config.limits.max_message_size
            ),
        ));
    }
    let now = Instant::now();
    let time_ms = unix_time_ms();
    let results = match &state.cluster {
        None => state.hub.with(|hub| {
            channels
                .into_iter()
                .map(|channel| {
                    let position = hub.publish(
                        Publisher::Server,
                        &channel,
                        request.data.clone(),
                        request.idempotency_key.as_deref(),
                        now,
                        time_ms,
                    )?;
                    Ok(PublishResult { channel, position })
                })
                .collect::<Result<Vec<_>, crate::hub::HubError>>()
        })?,
        Some(cluster) => {
            let mut results = Vec::with_capacity(channels.len());
            for channel in channels {
                let (publication, namespace) = state.hub.with(|hub| {
                    hub.prepare_publication(
                        Publisher::Server,
                        &channel,
                        request.data.clone(),
                        time_ms,
                    )
                })?;
                let position = cluster
                    .publish(
                        &channel,
                        &publication,
                        request.idempotency_key.as_deref(),
                        &namespace,
                        state.config.limits.hub.idempotency_window,
                    )
                    .await?;
                results.push(PublishResult { channel, position });
            }
            results
        }
    };
    Ok(Json(PublishResponse { results }))
}

fn bad_request(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
}
