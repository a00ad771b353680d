//! The `Origin` check on WebSocket upgrades, against cross-site WebSocket
//! hijacking: a page on another site must not ride a visitor's cookies or
//! network position into this server.

use axum::http::HeaderValue;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// The server's own origin (the scheme and `Host` the browser connected
    /// with), plus these exact origins.
    SameHostAnd(Vec<String>),
    /// Anything (`*`): for public APIs that authenticate by token only.
    Any,
}

/// Why an upgrade was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("origin {origin:?} is not allowed")]
pub struct ForeignOrigin {
    pub origin: String,
}

impl AllowedOrigins {
    /// Parses `--allowed-origins`: a comma-separated list, or `*`.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut origins = Vec::new();
        for origin in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            if origin == "*" {
                return Ok(AllowedOrigins::Any);
            }
            let Some((scheme, authority)) = origin.split_once("://") else {
                return Err(format!("{origin:?} is not scheme://host[:port]"));
            };
            if !matches!(scheme, "http" | "https")
                || authority.is_empty()
                || authority.contains('/')
            {
                return Err(format!("{origin:?} is not scheme://host[:port]"));
            }
            origins.push(origin.trim_end_matches('/').to_ascii_lowercase());
        }
        Ok(AllowedOrigins::SameHostAnd(origins))
    }

    /// Checks an upgrade's `Origin` against the list and the server's own
    /// origin: `scheme` and `host` as the client addressed them (behind a
    /// trusted proxy, from its `X-Forwarded-Proto` and `-Host`: see
    /// [`crate::net::proxy::Client`]). Default ports (80, 443) may be
    /// written or left out.
    ///
    /// A request without `Origin` is let through: browsers always send it on
    /// WebSocket upgrades, so its absence means a non-browser client (a
    /// server, a CLI, a test), which cross-site hijacking cannot involve.
    pub fn check(
        &self,
        origin: Option<&HeaderValue>,
        scheme: &str,
        host: Option<&str>,
    ) -> Result<(), ForeignOrigin> {
        let Some(origin) = origin else {
            return Ok(());
        };
        let foreign = || ForeignOrigin {
            origin: String::from_utf8_lossy(origin.as_bytes())
                .chars()
                .take(200)
                .collect(),
        };
        let origin_text = origin.to_str().map_err(|_| foreign())?.to_ascii_lowercase();
        match self {
            AllowedOrigins::Any => Ok(()),
            AllowedOrigins::SameHostAnd(origins) => {
                if origins.contains(&origin_text) {
                    return Ok(());
                }
                let theirs = origin_text
                    .split_once("://")
                    .map(|(scheme, authority)| same_origin_form(scheme, authority));
                let own = host.map(|host| same_origin_form(scheme, host));
                match (theirs, own) {
                    (Some(theirs), Some(own)) if theirs == own => Ok(()),
                    _ => Err(foreign()),
                }
            }
        }
    }
}

/// `scheme://authority` in lower case, without the scheme's default port.
fn same_origin_form(scheme: &str, authority: &str) -> String {
    let scheme = scheme.to_ascii_lowercase();
    let authority = authority.trim().trim_end_matches('/').to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => Some(":443"),
        "http" => Some(":80"),
        _ => None,
    };
    let authority = default_port
        .and_then(|port| authority.strip_suffix(port))
        .unwrap_or(&authority);
    format!("{scheme}://{authority}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(allowed: &str, origin: Option<&str>, host: &str) -> bool {
        check_scheme(allowed, origin, "http", host)
    }

    fn check_scheme(allowed: &str, origin: Option<&str>, scheme: &str, host: &str) -> bool {
        let origin = origin.map(|o| HeaderValue::from_str(o).unwrap());
        AllowedOrigins::parse(allowed)
            .unwrap()
            .check(origin.as_ref(), scheme, Some(host))
            .is_ok()
    }

    #[test]
    fn the_own_origin_has_the_scheme_the_client_used() {
        assert!(check_scheme(
            "",
            Some("https://rookery.example"),
            "https",
            "rookery.example"
        ));
        assert!(check_scheme(
            "",
            Some("https://rookery.example"),
            "https",
            "rookery.example:443"
        ));
        assert!(check_scheme(
            "",
            Some("https://rookery.example:443"),
            "https",
            "rookery.example"
        ));
        assert!(check_scheme(
            "",
            Some("http://rookery.example"),
            "http",
            "rookery.example:80"
        ));
        assert!(check_scheme(
            "",
            Some("https://[::1]:8443"),
            "https",
            "[::1]:8443"
        ));
        // A plain-http page is another origin than the https app.
        assert!(!check_scheme(
            "",
            Some("http://rookery.example"),
            "https",
            "rookery.example"
        ));
        assert!(!check_scheme(
            "",
            Some("https://rookery.example"),
            "http",
            "rookery.example"
        ));
        assert!(!check_scheme(
            "",
            Some("https://rookery.example:8443"),
            "https",
            "rookery.example"
        ));
    }

    #[test]
    fn own_origin_and_listed_origins_pass_others_do_not() {
        assert!(check("", Some("http://127.0.0.1:8000"), "127.0.0.1:8000"));
        assert!(check("", Some("HTTP://Localhost:8000"), "localhost:8000"));
        assert!(!check("", Some("http://evil.example"), "127.0.0.1:8000"));
        assert!(!check("", Some("http://127.0.0.1:9999"), "127.0.0.1:8000"));
        assert!(!check("", Some("null"), "127.0.0.1:8000"));
        assert!(check(
            "https://app.example",
            Some("https://app.example"),
            "ws.example"
        ));
        assert!(!check(
            "https://app.example",
            Some("http://app.example"),
            "ws.example"
        ));
        assert!(check("*", Some("http://anything"), "x"));
        assert!(check("", None, "127.0.0.1:8000"));
    }

    #[test]
    fn bad_lists_are_refused() {
        assert!(AllowedOrigins::parse("example.com").is_err());
        assert!(AllowedOrigins::parse("ftp://example.com").is_err());
        assert!(AllowedOrigins::parse("https://example.com/path").is_err());
    }
}
