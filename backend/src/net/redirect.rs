//! `--redirect-http`: a plain-HTTP listener that sends every request to the
//! same host and path over HTTPS with a 308 (method and body kept), so a
//! link typed without `https://` still reaches the app.

use axum::Router;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::http::error::ApiError;

/// Redirects everything to `https://{host}:{https_port}`; the port is left
/// out when it is 443.
pub fn router(https_port: u16) -> Router {
    Router::new().fallback(move |headers: HeaderMap, uri: Uri| async move {
        let host = headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok());
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        match location(host, path, https_port) {
            Some(location) => (
                StatusCode::PERMANENT_REDIRECT,
                [(header::LOCATION, location)],
            )
                .into_response(),
            None => bad_host(),
        }
    })
}

fn bad_host() -> Response {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_request",
        "a Host header naming this server is needed to redirect to https",
    )
    .into_response()
}

/// The https URL for a request to `host` (with or without a port) and
/// `path`; `None` when the host is missing or not a host name or address.
pub fn location(host: Option<&str>, path: &str, https_port: u16) -> Option<String> {
    let host = host?.trim();
    let name = match host.strip_prefix('[') {
        // An IPv6 literal keeps its brackets.
        Some(rest) => &host[..rest.find(']')? + 2],
        None => host.split(':').next()?,
    };
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    if !valid {
        return None;
    }
    let path = if path.starts_with('/') { path } else { "/" };
    Some(if https_port == 443 {
        format!("https://{name}{path}")
    } else {
        format!("https://{name}:{https_port}{path}")
    })
}

#[cfg(test)]
mod tests {
    use super::location;

    #[test]
    fn the_https_url_keeps_host_and_path_and_names_the_https_port() {
        let check = |host, path, port, expect: Option<&str>| {
            assert_eq!(
                location(host, path, port).as_deref(),
                expect,
                "{host:?} {path}"
            );
        };
        check(
            Some("example.com"),
            "/chat/lobby?x=1",
            443,
            Some("https://example.com/chat/lobby?x=1"),
        );
        check(
            Some("example.com:80"),
            "/",
            443,
            Some("https://example.com/"),
        );
        check(
            Some("example.com:8080"),
            "/map/x",
            8443,
            Some("https://example.com:8443/map/x"),
        );
        check(
            Some("127.0.0.1:8080"),
            "/",
            8443,
            Some("https://127.0.0.1:8443/"),
        );
        check(Some("[::1]:8080"), "/", 8443, Some("https://[::1]:8443/"));
        check(Some("[::1]"), "/", 443, Some("https://[::1]/"));
        check(None, "/", 443, None);
        check(Some(""), "/", 443, None);
        check(Some("evil.example/x"), "/", 443, None);
        check(Some("user@evil.example"), "/", 443, None);
        check(Some("[::1"), "/", 443, None);
    }
}
