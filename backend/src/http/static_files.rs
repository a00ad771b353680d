//! Serves the built web app from `--dist-dir`, with a single-page-app
//! fallback: any path that is not a file and does not look like one gets
//! `index.html`, so deep links like `/chat/lobby` load the app.

use std::convert::Infallible;
use std::path::PathBuf;

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use tower::ServiceExt;
use tower::service_fn;
use tower::util::BoxCloneSyncService;
use tower_http::services::ServeDir;

use super::error::ApiError;
use crate::server::AppState;

pub type StaticService = BoxCloneSyncService<Request<Body>, Response, Infallible>;

pub fn service(state: &AppState) -> StaticService {
    let dist = state.config.dist_dir.clone();
    let index = dist.join("index.html");
    let fallback = service_fn(move |request: Request<Body>| {
        let index = index.clone();
        async move { Ok::<_, Infallible>(spa_fallback(&index, request.uri().path()).await) }
    });
    let serve_dir = ServeDir::new(dist)
        .append_index_html_on_directories(true)
        .fallback(fallback);
    BoxCloneSyncService::new(serve_dir.map_response(|response| {
        let mut response = response.map(Body::new);
        // Until assets are fingerprinted and embedded, revalidate everything
        // so a new build is picked up on the next load.
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }))
}

async fn spa_fallback(index: &PathBuf, path: &str) -> Response {
    let last_segment = path.rsplit('/').next().unwrap_or("");
    let is_api = ["/api/", "/yjs/", "/ws/"]
        .iter()
        .any(|p| path.starts_with(p));
    if is_api || last_segment.contains('.') {
        return ApiError::not_found().into_response();
    }
    match tokio::fs::read_to_string(index).await {
        Ok(html) => Html(html).into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Html(
                "<!doctype html><title>Rookery</title><p>The web app is not built. \
                 Run <code>make run</code>, or <code>trunk build --release</code> \
                 and start the server from the repository root.</p>",
            ),
        )
            .into_response(),
    }
}
