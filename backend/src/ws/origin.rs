//! The `Origin` check on WebSocket upgrades, against cross-site WebSocket
//! hijacking: a page on another site must not ride a visitor's cookies or
//! network position into this server.

use axum::http::HeaderValue;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// The server's own origin (the `Host` the browser connected to), plus
    /// these exact origins.
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

    /// Checks an upgrade's `Origin` against the list and its `Host`.
    ///
    /// A request without `Origin` is let through: browsers always send it on
    /// WebSocket upgrades, so its absence means a non-browser client (a
    /// server, a CLI, a test), which cross-site hijacking cannot involve.
    pub fn check(
        &self,
        origin: Option<&HeaderValue>,
        host: Option<&HeaderValue>,
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
                let authority = origin_text.split_once("://").map(|(_, rest)| rest);
                let host = host
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_ascii_lowercase);
                match (authority, host) {
                    (Some(authority), Some(host)) if authority == host => Ok(()),
                    _ => Err(foreign()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(allowed: &str, origin: Option<&str>, host: &str) -> bool {
        let origin = origin.map(|o| HeaderValue::from_str(o).unwrap());
        AllowedOrigins::parse(allowed)
            .unwrap()
            .check(origin.as_ref(), Some(&HeaderValue::from_str(host).unwrap()))
            .is_ok()
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
