//! The web app held in memory: each file with its content type, an ETag,
//! and gzip and brotli variants made once (at build time for the copy the
//! `embed` feature puts into the binary). A request gets the smallest
//! variant its `Accept-Encoding` allows; nothing is compressed per request.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

/// The files of a built web app, by path relative to its root
/// (`index.html`, `vendor/leaflet/leaflet.js`).
#[derive(Default)]
pub struct Assets {
    files: HashMap<String, Asset>,
}

impl std::fmt::Debug for Assets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assets")
            .field("n_files", &self.files.len())
            .finish_non_exhaustive()
    }
}

struct Asset {
    content_type: HeaderValue,
    /// Identifies the content; each encoding's ETag adds a suffix.
    tag: String,
    identity: Bytes,
    gzip: Option<Bytes>,
    brotli: Option<Bytes>,
}

/// A `Content-Encoding` this server can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

impl Assets {
    /// Adds a file. `tag` identifies its content (a hash); the variants,
    /// when given, must decode to `identity`.
    pub fn insert(
        &mut self,
        path: &str,
        identity: Bytes,
        gzip: Option<Bytes>,
        brotli: Option<Bytes>,
        tag: String,
    ) {
        let mime = mime_guess::from_path(path).first_or_octet_stream();
        let textual = mime.type_() == mime_guess::mime::TEXT
            || matches!(mime.subtype().as_str(), "javascript" | "json" | "xml");
        let content_type = if textual && mime.get_param("charset").is_none() {
            format!("{mime}; charset=utf-8")
        } else {
            mime.to_string()
        };
        let asset = Asset {
            content_type: HeaderValue::from_str(&content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            tag,
            identity,
            gzip,
            brotli,
        };
        self.files
            .insert(path.trim_start_matches('/').to_owned(), asset);
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn contains(&self, path: &str) -> bool {
        self.files.contains_key(path.trim_start_matches('/'))
    }

    /// The response for the file at `path` (relative to the root), or
    /// `None` when there is none. `head`: headers only.
    pub fn respond(
        &self,
        path: &str,
        request: &HeaderMap,
        head: bool,
        cache_control: &'static str,
    ) -> Option<Response> {
        let asset = self.files.get(path.trim_start_matches('/'))?;
        let encoding = negotiate(
            request.get(header::ACCEPT_ENCODING),
            asset.brotli.is_some(),
            asset.gzip.is_some(),
        );
        let (body, coding, suffix) = match encoding {
            Encoding::Brotli => (asset.brotli.clone()?, Some("br"), "-br"),
            Encoding::Gzip => (asset.gzip.clone()?, Some("gzip"), "-gz"),
            Encoding::Identity => (asset.identity.clone(), None, ""),
        };
        let etag = HeaderValue::from_str(&format!("\"{}{suffix}\"", asset.tag)).ok()?;
        let mut response = Response::new(Body::empty());
        let headers = response.headers_mut();
        headers.insert(header::ETAG, etag.clone());
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        );
        if asset.gzip.is_some() || asset.brotli.is_some() {
            headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        if matches(request.get(header::IF_NONE_MATCH), &etag) {
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            return Some(response);
        }
        headers.insert(header::CONTENT_TYPE, asset.content_type.clone());
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if let Some(coding) = coding {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
        }
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        if !head {
            *response.body_mut() = Body::from(body);
        }
        Some(response)
    }

    /// The web app the `embed` feature built into this binary.
    #[cfg(feature = "embed")]
    pub fn embedded() -> Self {
        embedded::load()
    }
}

/// The encoding to answer with: the one of those at hand (`br`, `gzip`)
/// that `Accept-Encoding` ranks highest, brotli on a tie (it is smaller);
/// identity when neither is acceptable.
pub fn negotiate(accept: Option<&HeaderValue>, has_brotli: bool, has_gzip: bool) -> Encoding {
    let Some(accept) = accept.and_then(|value| value.to_str().ok()) else {
        return Encoding::Identity;
    };
    let (mut brotli, mut gzip, mut any) = (None, None, None);
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let quality = parts
            .find_map(|param| {
                let (name, value) = param.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("q")
                    .then(|| value.trim().parse::<f32>().unwrap_or(0.0))
            })
            .unwrap_or(1.0);
        match coding.as_str() {
            "br" => brotli = Some(quality),
            "gzip" | "x-gzip" => gzip = Some(quality),
            "*" => any = Some(quality),
            _ => {}
        }
    }
    let brotli = if has_brotli {
        brotli.or(any).unwrap_or(0.0)
    } else {
        0.0
    };
    let gzip = if has_gzip {
        gzip.or(any).unwrap_or(0.0)
    } else {
        0.0
    };
    if brotli > 0.0 && brotli >= gzip {
        Encoding::Brotli
    } else if gzip > 0.0 {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

/// Whether `If-None-Match` names `etag` (weakly, as RFC 9110 asks for GET).
fn matches(if_none_match: Option<&HeaderValue>, etag: &HeaderValue) -> bool {
    let Some(list) = if_none_match.and_then(|value| value.to_str().ok()) else {
        return false;
    };
    let etag = etag.to_str().unwrap_or("");
    list.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

#[cfg(feature = "embed")]
mod embedded {
    //! The files build.rs prepared under `$OUT_DIR/web`: `identity/` is
    //! `dist/` as built, `gzip/` and `br/` hold the variants worth having.

    use std::borrow::Cow;

    use axum::body::Bytes;
    use rust_embed::RustEmbed;

    use super::Assets;

    #[derive(RustEmbed)]
    #[folder = "$OUT_DIR/web/identity"]
    struct Identity;

    #[derive(RustEmbed)]
    #[folder = "$OUT_DIR/web/gzip"]
    struct Gzip;

    #[derive(RustEmbed)]
    #[folder = "$OUT_DIR/web/br"]
    struct Brotli;

    fn bytes(data: Cow<'static, [u8]>) -> Bytes {
        match data {
            Cow::Borrowed(data) => Bytes::from_static(data),
            Cow::Owned(data) => Bytes::from(data),
        }
    }

    pub fn load() -> Assets {
        let mut assets = Assets::default();
        for path in Identity::iter() {
            let Some(file) = Identity::get(&path) else {
                continue;
            };
            let tag: String = file.metadata.sha256_hash()[..8]
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect();
            assets.insert(
                &path,
                bytes(file.data),
                Gzip::get(&path).map(|file| bytes(file.data)),
                Brotli::get(&path).map(|file| bytes(file.data)),
                tag,
            );
        }
        assets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(accept: &str) -> Encoding {
        negotiate(Some(&HeaderValue::from_str(accept).unwrap()), true, true)
    }

    #[test]
    fn the_smallest_acceptable_encoding_is_chosen() {
        assert_eq!(pick("gzip, deflate, br, zstd"), Encoding::Brotli);
        assert_eq!(pick("gzip, deflate"), Encoding::Gzip);
        assert_eq!(pick("br;q=0.5, gzip;q=0.8"), Encoding::Gzip);
        assert_eq!(pick("br;q=0, gzip"), Encoding::Gzip);
        assert_eq!(pick("br;q=0, gzip;q=0"), Encoding::Identity);
        assert_eq!(pick("*"), Encoding::Brotli);
        assert_eq!(pick("identity"), Encoding::Identity);
        assert_eq!(pick("BR"), Encoding::Brotli);
        assert_eq!(negotiate(None, true, true), Encoding::Identity);
        let both = HeaderValue::from_static("gzip, br");
        assert_eq!(negotiate(Some(&both), false, true), Encoding::Gzip);
        assert_eq!(negotiate(Some(&both), false, false), Encoding::Identity);
    }

    fn request(headers: &[(header::HeaderName, &str)]) -> HeaderMap {
        headers
            .iter()
            .map(|(name, value)| (name.clone(), HeaderValue::from_str(value).unwrap()))
            .collect()
    }

    #[test]
    fn a_file_comes_with_its_type_encoding_etag_and_caching() {
        let mut assets = Assets::default();
        assets.insert(
            "app-0123456789abcdef.js",
            Bytes::from_static(b"console.log(1)"),
            Some(Bytes::from_static(b"GZ")),
            Some(Bytes::from_static(b"BR")),
            "abc".into(),
        );
        let cache = "public, max-age=31536000, immutable";
        let response = assets
            .respond(
                "/app-0123456789abcdef.js",
                &request(&[(header::ACCEPT_ENCODING, "gzip, br")]),
                false,
                cache,
            )
            .unwrap();
        let headers = response.headers();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert_eq!(headers[header::CONTENT_ENCODING], "br");
        assert_eq!(headers[header::CONTENT_LENGTH], "2");
        assert_eq!(headers[header::VARY], "accept-encoding");
        assert_eq!(headers[header::ETAG], "\"abc-br\"");
        assert_eq!(headers[header::CACHE_CONTROL], cache);

        let plain = assets
            .respond("app-0123456789abcdef.js", &HeaderMap::new(), false, cache)
            .unwrap();
        assert!(!plain.headers().contains_key(header::CONTENT_ENCODING));
        assert_eq!(plain.headers()[header::CONTENT_LENGTH], "14");

        let revalidated = assets
            .respond(
                "app-0123456789abcdef.js",
                &request(&[
                    (header::ACCEPT_ENCODING, "gzip"),
                    (header::IF_NONE_MATCH, "\"x\", W/\"abc-gz\""),
                ]),
                false,
                cache,
            )
            .unwrap();
        assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(revalidated.headers()[header::ETAG], "\"abc-gz\"");

        assert!(
            assets
                .respond("missing.js", &HeaderMap::new(), false, cache)
                .is_none()
        );
    }

    #[test]
    fn types_cover_what_trunk_builds() {
        let mut assets = Assets::default();
        for path in [
            "index.html",
            "a.wasm",
            "a.css",
            "a.svg",
            "a.json",
            "a.png",
            "LICENSE",
        ] {
            assets.insert(path, Bytes::new(), None, None, "t".into());
        }
        let content_type = |path: &str| {
            assets
                .respond(path, &HeaderMap::new(), true, "no-cache")
                .unwrap()
                .headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("a.wasm"), "application/wasm");
        assert_eq!(content_type("a.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("a.svg"), "image/svg+xml");
        assert_eq!(content_type("a.json"), "application/json; charset=utf-8");
        assert_eq!(content_type("a.png"), "image/png");
        assert_eq!(content_type("LICENSE"), "application/octet-stream");
    }
}
