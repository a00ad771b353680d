//! The node's life: health, the web app, heartbeats and graceful shutdown.

use std::time::Duration;

use rookery_common::{ClientMessage, CloseCode, ServerMessage};
use serde_json::json;

use crate::support::{INDEX_HTML, TestClient, TestServer, within};

#[tokio::test]
async fn health_and_the_web_app_with_deep_links() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(server.url(path)).send();

    let health = get("/healthz").await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);

    for path in ["/", "/chat/lobby", "/chat/some-room"] {
        let page = get(path).await.unwrap();
        assert_eq!(page.status(), 200, "{path}");
        assert_eq!(page.text().await.unwrap(), INDEX_HTML, "{path}");
    }
    let script = get("/app.js").await.unwrap();
    assert_eq!(script.status(), 200);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );

    for path in ["/missing.js", "/api/v1/nothing"] {
        let response = get(path).await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    for path in [
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2fetc/passwd",
    ] {
        let body = get(path).await.unwrap().text().await.unwrap();
        assert!(!body.contains("root:"), "{path} escaped the dist dir");
    }
    let config: serde_json::Value = get("/config.json").await.unwrap().json().await.unwrap();
    assert_eq!(config["max_message_size"], 65536);
    // OpenStreetMap by default, with the attribution its policy requires.
    assert_eq!(
        config["tiles"]["url"],
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    );
    assert!(
        config["tiles"]["attribution"]
            .as_str()
            .unwrap()
            .contains("OpenStreetMap</a> contributors")
    );
    assert_eq!(config["map"]["value_ttl_ms"], 120_000);

    let offline =
        TestServer::start_with(|config| config.tiles = rookery::config::Tiles::None).await;
    let config: serde_json::Value = http
        .get(offline.url("/config.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["tiles"], "none");
}

#[tokio::test]
async fn shutdown_closes_every_socket_with_the_reconnect_code_after_queued_messages() {
    let server = TestServer::start().await;
    let mut alice = server.client("Alice").await;
    let mut bob = server.client("Bob").await;
    bob.subscribe("chat:lobby").await;
    alice.publish("chat:lobby", json!("last words")).await;
    let state = server.state.clone();
    let stopping = tokio::spawn(server.shutdown());

    assert_eq!(bob.next_publication().await, json!("last words"));
    match bob.recv().await {
        ServerMessage::Disconnect {
            code, reconnect, ..
        } => {
            assert_eq!(code, CloseCode::Shutdown);
            assert!(reconnect);
        }
        other => panic!("expected disconnect, got {other:?}"),
    }
    assert_eq!(bob.closed().await.code, 4200);
    assert_eq!(alice.closed().await.code, 4200);
    within(stopping).await.unwrap().unwrap();
    assert!(state.is_shutting_down());
    assert_eq!(state.n_sockets(), 0);
}

/// Real time with a one-second interval: a paused clock can jump past
/// bytes still in flight on a real socket. The timing rule itself is tested
/// under explicit instants in `ws::heartbeat`.
#[tokio::test]
async fn a_client_that_stops_answering_pings_is_closed_with_4201() {
    let server = TestServer::start_with(|config| {
        config.limits.ping_interval = Duration::from_secs(1);
    })
    .await;
    let started = tokio::time::Instant::now();
    let mut silent = server.client("Silent").await;
    let mut lively = server.client("Lively").await;
    // Lively answers every ping; Silent never does.
    let lively_task = tokio::spawn(async move {
        for _ in 0..3 {
            assert_eq!(lively.recv_with_pings().await, ServerMessage::Ping {});
            lively.send(&ClientMessage::Pong {}).await;
        }
        lively
    });
    assert_eq!(silent.closed().await.code, 4201);
    assert!(started.elapsed() >= Duration::from_secs(2));
    let mut lively = within(lively_task).await.unwrap();
    let reply = lively.request(|id| ClientMessage::Ping { id }).await;
    assert!(matches!(reply, ServerMessage::Pong { .. }));
}

#[tokio::test]
async fn a_socket_that_never_sends_connect_is_closed_with_4103() {
    let server = TestServer::start().await;
    // Paused only now: opening the store waits on a thread the paused
    // clock knows nothing of, and would time out at once.
    tokio::time::pause();
    let mut client = TestClient::open(&server.ws_url()).await;
    assert_eq!(
        client.closed_within(Duration::from_secs(60)).await.code,
        4103
    );
}
