//! Reading the hub: channels with their subscriber counts, a channel's
//! presence and its history.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use rookery_common::{ChannelName, Publication, StreamPosition, UserInfo};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{ApiKey, parse_channel};
use crate::http::error::ApiError;
use crate::hub::ChannelSummary;
use crate::server::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    namespace: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ChannelList {
    channels: Vec<ChannelSummary>,
}

pub async fn list(
    _: ApiKey,
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<ChannelList>, ApiError> {
    let Query(query) = query.map_err(|rejection| bad_query(&rejection))?;
    let channels = state
        .hub
        .with(|hub| hub.channels(query.namespace.as_deref()));
    Ok(Json(ChannelList { channels }))
}

#[derive(Debug, Serialize)]
pub struct PresenceResponse {
    channel: ChannelName,
    members: Vec<UserInfo>,
}

pub async fn presence(
    _: ApiKey,
    State(state): State<AppState>,
    Path(channel): Path<String>,
) -> Result<Json<PresenceResponse>, ApiError> {
    let channel = parse_channel(&channel)?;
    if let Some(cluster) = &state.cluster {
        cluster.follow(&state.hub, &channel).await?;
    }
    let members = state.hub.with(|hub| hub.presence(&channel))?;
    Ok(Json(PresenceResponse { channel, members }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    limit: Option<u32>,
    since_epoch: Option<String>,
    since_offset: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct HistoryResponse {
    channel: ChannelName,
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<StreamPosition>,
    publications: Vec<Publication>,
}

pub async fn history(
    _: ApiKey,
    State(state): State<AppState>,
    Path(channel): Path<String>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<HistoryResponse>, ApiError> {
    let channel = parse_channel(&channel)?;
    let Query(query) = query.map_err(|rejection| bad_query(&rejection))?;
    let since = match (query.since_epoch, query.since_offset) {
        (Some(epoch), Some(offset)) => Some(StreamPosition { epoch, offset }),
        (None, None) => None,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "give since_epoch and since_offset together",
            ));
        }
    };
    if let Some(cluster) = &state.cluster {
        cluster.follow(&state.hub, &channel).await?;
    }
    let (position, publications) = state
        .hub
        .with(|hub| hub.history(&channel, since.as_ref(), query.limit, Instant::now()))?;
    Ok(Json(HistoryResponse {
        channel,
        position,
        publications,
    }))
}

fn bad_query(rejection: &QueryRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_request",
        rejection.body_text(),
    )
}
