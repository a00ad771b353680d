//! The HTTP API under `/api/v1`, for app backends: publish to channels, list
//! channels, read presence and history. Every route but the OpenAPI
//! document needs `Authorization: Bearer <api key>`.
//!
//! - [`publish`]: `POST /publish`.
//! - [`channels`]: `GET /channels`, `…/{channel}/presence`, `…/{channel}/history`.

pub mod channels;
pub mod publish;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rookery_common::{ChannelName, ErrorCode};
use subtle::ConstantTimeEq;

use crate::http::error::ApiError;
use crate::hub::HubError;
use crate::server::AppState;

/// The OpenAPI 3.1 description of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Largest request body; a publish carries at most one message's worth.
const MAX_BODY: usize = 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/publish", post(publish::publish))
        .route("/channels", get(channels::list))
        .route("/channels/{channel}/presence", get(channels::presence))
        .route("/channels/{channel}/history", get(channels::history))
        .route("/openapi.json", get(openapi))
        .fallback(|| async { ApiError::not_found() })
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// Proof that the request carried the API key. Taking it as an argument is
/// what protects a handler.
#[derive(Debug)]
pub struct ApiKey;

impl FromRequestParts<AppState> for ApiKey {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized = |message: &str| {
            let mut response =
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        };
        let Some(expected) = &state.config.api_key else {
            return Err(unauthorized(
                "the HTTP API is disabled: start the server with --api-key",
            ));
        };
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorized("send Authorization: Bearer <api key>"))?;
        // Constant time, so the key cannot be guessed byte by byte.
        if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
            Ok(ApiKey)
        } else {
            Err(unauthorized("invalid API key"))
        }
    }
}

/// Parses a channel from a path or body.
pub fn parse_channel(channel: &str) -> Result<ChannelName, ApiError> {
    ChannelName::parse(channel).map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidChannel.slug(),
            format!("invalid channel: {error}"),
        )
    })
}

impl From<HubError> for ApiError {
    fn from(error: HubError) -> Self {
        let status = match error.code {
            ErrorCode::UnknownNamespace => StatusCode::NOT_FOUND,
            ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, error.code.slug(), error.message)
    }
}
