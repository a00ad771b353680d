//! Serves the built web app with a single-page-app fallback: any path that
//! is not a file and does not look like one gets `index.html`, so deep
//! links like `/chat/lobby` load the app. The app comes from `--dist-dir`
//! on disk (read per request, so a new trunk build shows at once) or from
//! memory ([`WebApp::Memory`]: the copy the `embed` feature built in, with
//! precompressed variants). Either way each file gets its
//! [`caching::cache_control`].

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use tower::ServiceExt;
use tower::service_fn;
use tower::util::BoxCloneSyncService;
use tower_http::services::ServeDir;

use super::assets::Assets;
use super::caching::{self, ALWAYS_REVALIDATE};
use super::error::ApiError;
use crate::config::WebApp;
use crate::server::AppState;

pub type StaticService = BoxCloneSyncService<Request<Body>, Response, Infallible>;

pub fn service(state: &AppState) -> StaticService {
    match &state.config.web_app {
        WebApp::Dir(dist) => from_dir(dist.clone()),
        WebApp::Memory(assets) => from_memory(assets.clone()),
    }
}

fn from_dir(dist: PathBuf) -> StaticService {
    let index = dist.join("index.html");
    if !index.exists() {
        tracing::warn!(dist_dir = %dist.display(), "web app not built: only the API and /ws are served");
    }
    let fallback = service_fn(move |request: Request<Body>| {
        let index = index.clone();
        async move { Ok::<_, Infallible>(spa_fallback(&index, request.uri().path()).await) }
    });
    let serve_dir = ServeDir::new(dist)
        .append_index_html_on_directories(true)
        .fallback(fallback);
    BoxCloneSyncService::new(service_fn(move |request: Request<Body>| {
        let cache_control = caching::cache_control(request.uri().path());
        let serve_dir = serve_dir.clone();
        async move {
            let mut response = serve_dir.oneshot(request).await?.map(Body::new);
            // The fallback sets its own; errors are not for keeping.
            let status = response.status();
            if status.is_success() || status == StatusCode::NOT_MODIFIED {
                response
                    .headers_mut()
                    .entry(header::CACHE_CONTROL)
                    .or_insert(HeaderValue::from_static(cache_control));
            }
            Ok(response)
        }
    }))
}

fn from_memory(assets: Arc<Assets>) -> StaticService {
    BoxCloneSyncService::new(service_fn(move |request: Request<Body>| {
        let assets = assets.clone();
        async move { Ok::<_, Infallible>(serve_from_memory(&assets, &request)) }
    }))
}

fn serve_from_memory(assets: &Assets, request: &Request<Body>) -> Response {
    let method = request.method();
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
        )
            .into_response();
    }
    let head = method == Method::HEAD;
    let path = request.uri().path();
    let Ok(decoded) = percent_encoding::percent_decode_str(path).decode_utf8() else {
        return ApiError::not_found().into_response();
    };
    let mut file = decoded.trim_start_matches('/').to_owned();
    if file.is_empty() || file.ends_with('/') {
        file.push_str("index.html");
    }
    let cache_control = caching::cache_control(&file);
    if let Some(response) = assets.respond(&file, request.headers(), head, cache_control) {
        return response;
    }
    if !is_app_route(path) {
        return ApiError::not_found().into_response();
    }
    assets
        .respond("index.html", request.headers(), head, ALWAYS_REVALIDATE)
        .unwrap_or_else(not_built)
}

/// Paths the app's router handles: not the API's and not a file's (a
/// missing script must be a 404, not a page of HTML).
fn is_app_route(path: &str) -> bool {
    let last_segment = path.rsplit('/').next().unwrap_or("");
    let is_api = ["/api/", "/yjs/", "/ws/"]
        .iter()
        .any(|p| path.starts_with(p));
    !is_api && !last_segment.contains('.')
}

async fn spa_fallback(index: &Path, path: &str) -> Response {
    if !is_app_route(path) {
        return ApiError::not_found().into_response();
    }
    match tokio::fs::read_to_string(index).await {
        Ok(html) => ([(header::CACHE_CONTROL, ALWAYS_REVALIDATE)], Html(html)).into_response(),
        Err(_) => not_built(),
    }
}

fn not_built() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Html(
            "<!doctype html><title>Rookery</title><p>The web app is not built. \
             Run <code>.ci/dev run</code>, or <code>trunk build --release</code> \
             and start the server from the repository root.</p>",
        ),
    )
        .into_response()
}
