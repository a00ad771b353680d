//! The opening handshake (RFC 6455 §4.2): which upgrade requests are
//! WebSocket handshakes, and the `101 Switching Protocols` that accepts one.

use axum::http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use axum::response::Response;
use base64::Engine;
use sha1::{Digest, Sha1};

use super::deflate::{self, Agreed};
use crate::http::error::ApiError;

/// Appended to the client's key before hashing (RFC 6455 §1.3).
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A checked handshake: what the response must carry.
#[derive(Debug, PartialEq, Eq)]
pub struct Handshake {
    accept: String,
    pub protocol: Option<&'static str>,
    /// permessage-deflate, when the server allows it and the client offered
    /// terms it can accept.
    pub deflate: Option<Agreed>,
}

fn bad(status: StatusCode, code: &'static str, message: &'static str) -> ApiError {
    ApiError::new(status, code, message)
}

/// Whether a comma-separated header lists `token` (case-insensitively).
fn lists(headers: &HeaderMap, name: axum::http::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// Checks an upgrade request. `protocols` are the subprotocols this
/// endpoint speaks: the first the client lists (its preference) is chosen.
/// A client offering none is accepted (and speaks the first anyway); one
/// offering only others is too, with no protocol in the answer, which
/// browsers then refuse themselves. `deflate`: whether permessage-deflate
/// may be agreed.
pub fn check(
    method: &Method,
    version: Version,
    headers: &HeaderMap,
    protocols: &[&'static str],
    deflate: bool,
) -> Result<Handshake, ApiError> {
    if method != Method::GET {
        return Err(bad(
            StatusCode::METHOD_NOT_ALLOWED,
            "not_a_websocket_handshake",
            "a websocket handshake is a GET request",
        ));
    }
    if version != Version::HTTP_11 {
        return Err(bad(
            StatusCode::BAD_REQUEST,
            "not_a_websocket_handshake",
            "websockets are opened over HTTP/1.1",
        ));
    }
    if !lists(headers, CONNECTION, "upgrade") || !lists(headers, UPGRADE, "websocket") {
        return Err(bad(
            StatusCode::UPGRADE_REQUIRED,
            "not_a_websocket_handshake",
            "this endpoint only accepts websocket upgrades",
        ));
    }
    if headers
        .get(SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err(bad(
            StatusCode::BAD_REQUEST,
            "unsupported_websocket_version",
            "Sec-WebSocket-Version must be 13",
        ));
    }
    let key = headers
        .get(SEC_WEBSOCKET_KEY)
        .filter(|key| {
            // 16 random bytes, base64: 24 characters.
            base64::engine::general_purpose::STANDARD
                .decode(key.as_bytes())
                .is_ok_and(|bytes| bytes.len() == 16)
        })
        .ok_or_else(|| {
            bad(
                StatusCode::BAD_REQUEST,
                "not_a_websocket_handshake",
                "Sec-WebSocket-Key must be 16 bytes in base64",
            )
        })?;
    let protocol = headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|offered| {
            protocols
                .iter()
                .find(|ours| ours.eq_ignore_ascii_case(offered.trim()))
                .copied()
        });
    let deflate = if deflate {
        deflate::negotiate(
            headers
                .get_all(SEC_WEBSOCKET_EXTENSIONS)
                .iter()
                .filter_map(|value| value.to_str().ok()),
        )
    } else {
        None
    };
    Ok(Handshake {
        accept: accept_key(key.as_bytes()),
        protocol,
        deflate,
    })
}

/// `Sec-WebSocket-Accept` for a client's key.
fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

impl Handshake {
    pub fn response(&self) -> Response {
        let mut response = Response::new(axum::body::Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(
            SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_str(&self.accept).expect("base64 is a valid header value"),
        );
        if let Some(protocol) = self.protocol {
            headers.insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(protocol));
        }
        if let Some(agreed) = self.deflate {
            headers.insert(
                SEC_WEBSOCKET_EXTENSIONS,
                HeaderValue::from_static(agreed.response()),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    const GOOD: [(&str, &str); 4] = [
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn the_accept_key_is_the_rfc_example() {
        // RFC 6455 §1.3.
        let handshake = check(
            &Method::GET,
            Version::HTTP_11,
            &request(&GOOD),
            &["p"],
            true,
        )
        .unwrap();
        assert_eq!(handshake.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(handshake.protocol, None);
        assert_eq!(handshake.deflate, None);
        let response = handshake.response();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(
            response.headers()[SEC_WEBSOCKET_ACCEPT],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    const OURS: [&str; 2] = ["rookery.v1.json", "rookery.v1.bin"];

    #[test]
    fn the_clients_first_protocol_we_speak_is_chosen() {
        let chosen = |offer: &'static str| {
            let mut pairs = GOOD.to_vec();
            pairs.push(("sec-websocket-protocol", offer));
            check(
                &Method::GET,
                Version::HTTP_11,
                &request(&pairs),
                &OURS,
                false,
            )
            .unwrap()
            .protocol
        };
        assert_eq!(chosen("other, rookery.v1.json"), Some("rookery.v1.json"));
        assert_eq!(
            chosen("rookery.v1.bin, rookery.v1.json"),
            Some("rookery.v1.bin")
        );
        assert_eq!(
            chosen("rookery.v1.json,rookery.v1.bin"),
            Some("rookery.v1.json")
        );
        assert_eq!(chosen("other"), None);
        let mut pairs = GOOD.to_vec();
        pairs.push(("sec-websocket-protocol", "rookery.v1.bin"));
        let handshake = check(
            &Method::GET,
            Version::HTTP_11,
            &request(&pairs),
            &OURS,
            false,
        )
        .unwrap();
        assert_eq!(
            handshake.response().headers()[SEC_WEBSOCKET_PROTOCOL],
            "rookery.v1.bin"
        );
    }

    #[test]
    fn deflate_is_agreed_only_when_allowed_and_offered() {
        let mut pairs = GOOD.to_vec();
        pairs.push((
            "sec-websocket-extensions",
            "permessage-deflate; client_max_window_bits",
        ));
        let offered = request(&pairs);
        let refused = check(&Method::GET, Version::HTTP_11, &offered, &OURS, false).unwrap();
        assert_eq!(refused.deflate, None);
        assert!(
            !refused
                .response()
                .headers()
                .contains_key(SEC_WEBSOCKET_EXTENSIONS)
        );
        let agreed = check(&Method::GET, Version::HTTP_11, &offered, &OURS, true).unwrap();
        assert!(agreed.deflate.is_some());
        assert_eq!(
            agreed.response().headers()[SEC_WEBSOCKET_EXTENSIONS],
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
    }

    #[test]
    fn requests_that_are_not_handshakes_are_refused() {
        let status = |method: Method, version, pairs: &[(&'static str, &'static str)]| {
            check(&method, version, &request(pairs), &["p"], false)
                .unwrap_err()
                .status
        };
        assert_eq!(
            status(Method::POST, Version::HTTP_11, &GOOD),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            status(Method::GET, Version::HTTP_10, &GOOD),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(Method::GET, Version::HTTP_11, &GOOD[1..]),
            StatusCode::UPGRADE_REQUIRED
        );
        let mut old = GOOD.to_vec();
        old[2] = ("sec-websocket-version", "8");
        assert_eq!(
            status(Method::GET, Version::HTTP_11, &old),
            StatusCode::BAD_REQUEST
        );
        let mut short_key = GOOD.to_vec();
        short_key[3] = ("sec-websocket-key", "c2hvcnQ=");
        assert_eq!(
            status(Method::GET, Version::HTTP_11, &short_key),
            StatusCode::BAD_REQUEST
        );
    }
}
