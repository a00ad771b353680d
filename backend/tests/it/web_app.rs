//! The web app's files over HTTP: how long browsers may keep each, and, for
//! the copy held in memory (what the `embed` feature builds in), the
//! precompressed variant each client gets.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use reqwest::header::{HeaderMap, HeaderValue};
use rookery::config::WebApp;
use rookery::http::assets::Assets;

use crate::support::TestServer;
use crate::support::tempdir::TempDir;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const VENDOR: &str = "public, max-age=3600, must-revalidate";
const WASM: &str = "app-0123456789abcdef_bg.wasm";

/// What trunk builds, in miniature.
const FILES: [(&str, &str); 4] = [
    ("index.html", "<!doctype html><title>app</title>"),
    ("app-0123456789abcdef.js", "console.log('app')"),
    (WASM, "\0asm-pretend"),
    ("vendor/leaflet/leaflet.js", "window.L = {}"),
];

async fn get(
    server: &TestServer,
    path: &str,
    headers: &[(&'static str, &'static str)],
) -> reqwest::Response {
    let headers: HeaderMap = headers
        .iter()
        .map(|(name, value)| (name.parse().unwrap(), HeaderValue::from_static(value)))
        .collect();
    reqwest::Client::new()
        .get(server.url(path))
        .headers(headers)
        .send()
        .await
        .unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap())
}

#[tokio::test]
async fn from_disk_hashed_files_are_kept_for_good_and_pages_revalidated() {
    let dist = TempDir::new();
    for (path, contents) in FILES {
        let file = dist.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, contents).unwrap();
    }
    let server = TestServer::start_with(|config| {
        config.web_app = WebApp::Dir(PathBuf::from(dist.path()));
    })
    .await;
    for (path, cache_control) in [
        ("/", "no-cache"),
        ("/index.html", "no-cache"),
        ("/chat/lobby", "no-cache"),
        // A room whose name looks like a hash is still a page.
        ("/chat/room-0123456789abcdef", "no-cache"),
        ("/app-0123456789abcdef.js", IMMUTABLE),
        ("/app-0123456789abcdef_bg.wasm", IMMUTABLE),
        ("/vendor/leaflet/leaflet.js", VENDOR),
    ] {
        let response = get(&server, path, &[]).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            header(&response, "cache-control"),
            Some(cache_control),
            "{path}"
        );
    }
    let missing = get(&server, "/app-fedcba9876543210.js", &[]).await;
    assert_eq!(missing.status(), 404);
    assert_eq!(header(&missing, "cache-control"), None, "a 404 is not kept");
}

/// An in-memory app whose "compressed" variants are recognisable stand-ins.
fn in_memory() -> Assets {
    let mut assets = Assets::default();
    for (path, contents) in FILES {
        assets.insert(
            path,
            Bytes::from_static(contents.as_bytes()),
            Some(Bytes::from(format!("gzip of {path}"))),
            Some(Bytes::from(format!("brotli of {path}"))),
            format!("tag-{}", path.len()),
        );
    }
    assets
}

#[tokio::test]
async fn from_memory_each_client_gets_the_smallest_encoding_it_accepts() {
    let server = TestServer::start_with(|config| {
        config.web_app = WebApp::Memory(Arc::new(in_memory()));
    })
    .await;
    let wasm = format!("/{WASM}");

    let browser = get(
        &server,
        &wasm,
        &[("accept-encoding", "gzip, deflate, br, zstd")],
    )
    .await;
    assert_eq!(header(&browser, "content-encoding"), Some("br"));
    assert_eq!(header(&browser, "content-type"), Some("application/wasm"));
    assert_eq!(header(&browser, "cache-control"), Some(IMMUTABLE));
    assert_eq!(header(&browser, "vary"), Some("accept-encoding"));
    let etag = header(&browser, "etag").unwrap().to_owned();
    assert_eq!(browser.text().await.unwrap(), format!("brotli of {WASM}"));

    let older = get(&server, &wasm, &[("accept-encoding", "gzip")]).await;
    assert_eq!(header(&older, "content-encoding"), Some("gzip"));
    assert_eq!(older.text().await.unwrap(), format!("gzip of {WASM}"));

    let curl = get(&server, &wasm, &[]).await;
    assert_eq!(header(&curl, "content-encoding"), None);
    assert_eq!(curl.text().await.unwrap(), "\0asm-pretend");

    // A revalidation of what the browser holds costs no body.
    let revalidated = reqwest::Client::new()
        .get(server.url(&wasm))
        .header("accept-encoding", "br")
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);

    let head = reqwest::Client::new()
        .head(server.url(&wasm))
        .header("accept-encoding", "br")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        header(&head, "content-length"),
        Some(format!("brotli of {WASM}").len().to_string().as_str())
    );

    let vendor = get(
        &server,
        "/vendor/leaflet/leaflet.js",
        &[("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(header(&vendor, "cache-control"), Some(VENDOR));
    assert_eq!(
        header(&vendor, "content-type"),
        Some("text/javascript; charset=utf-8")
    );
}

#[tokio::test]
async fn from_memory_deep_links_get_the_page_and_missing_files_a_json_404() {
    let server = TestServer::start_with(|config| {
        config.web_app = WebApp::Memory(Arc::new(in_memory()));
    })
    .await;
    for path in [
        "/",
        "/index.html",
        "/chat/lobby",
        "/map/x",
        "/chat/room-0123456789abcdef",
    ] {
        let page = get(&server, path, &[("accept-encoding", "br")]).await;
        assert_eq!(page.status(), 200, "{path}");
        assert_eq!(header(&page, "cache-control"), Some("no-cache"), "{path}");
        assert_eq!(
            header(&page, "content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(page.text().await.unwrap(), "brotli of index.html", "{path}");
    }
    for path in ["/missing.js", "/app-fedcba9876543210.js", "/api/v1/nothing"] {
        let response = get(&server, path, &[]).await;
        assert_eq!(response.status(), 404, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }
    for path in [
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2fetc/passwd",
    ] {
        let body = get(&server, path, &[]).await.text().await.unwrap();
        assert!(!body.contains("root:"), "{path} escaped the app");
    }
    let post = reqwest::Client::new()
        .post(server.url("/index.html"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
}
