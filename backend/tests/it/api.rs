//! The HTTP API, as an app's backend uses it.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::TestServer;

#[tokio::test]
async fn a_backend_publishes_to_several_channels_and_subscribers_receive_it() {
    let server = TestServer::start().await;
    let mut lobby = server.client("Lobby").await;
    lobby.subscribe("chat:lobby").await;
    let mut other = server.client("Other").await;
    other.subscribe("chat:other").await;

    let response = server
        .api(Method::POST, "/publish")
        .json(&json!({"channels": ["chat:lobby", "chat:other"], "data": {"text": "from the backend"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["results"][0]["channel"], "chat:lobby");
    assert_eq!(body["results"][0]["position"]["offset"], 1);
    assert_eq!(
        lobby.next_publication().await,
        json!({"text": "from the backend"})
    );
    assert_eq!(
        other.next_publication().await,
        json!({"text": "from the backend"})
    );
}

#[tokio::test]
async fn channels_presence_and_history_read_the_hub() {
    let server = TestServer::start().await;
    let mut alice = server.client("Alice").await;
    alice.subscribe("chat:lobby").await;
    let mut bob = server.client("Bob").await;
    bob.subscribe("chat:lobby").await;
    for text in ["one", "two", "three"] {
        alice.publish("chat:lobby", json!({"text": text})).await;
    }

    let get = |path: &str| server.api(Method::GET, path).send();
    let channels: Value = get("/channels").await.unwrap().json().await.unwrap();
    assert_eq!(
        channels["channels"],
        json!([{"channel": "chat:lobby", "subscribers": 2, "members": 2}])
    );
    let filtered: Value = get("/channels?namespace=notify")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(filtered["channels"], json!([]));

    let presence: Value = get("/channels/chat:lobby/presence")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = presence["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Alice", "Bob"]);

    let history: Value = get("/channels/chat:lobby/history?limit=2")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let texts: Vec<&Value> = history["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["data"]["text"])
        .collect();
    assert_eq!(texts, [&json!("two"), &json!("three")]);
    let epoch = history["position"]["epoch"].as_str().unwrap().to_owned();
    let since: Value = get(&format!(
        "/channels/chat:lobby/history?since_epoch={epoch}&since_offset=1"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(since["publications"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_api_key_is_required_and_checked() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let url = server.url("/api/v1/channels");
    for request in [
        http.get(&url),
        http.get(&url).bearer_auth("wrong-key-0123456789"),
        http.get(&url).header("authorization", "Basic abc"),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    let disabled = TestServer::start_with(|config| config.api_key = None).await;
    let response = disabled.api(Method::GET, "/channels").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_requests_get_json_errors_and_publish_nothing() {
    let server = TestServer::start().await;
    let mut watcher = server.client("Watcher").await;
    watcher.subscribe("chat:lobby").await;
    let publish = |body: Value| server.api(Method::POST, "/publish").json(&body).send();
    let check = async |body: Value, status: u16, code: &str| {
        let response = publish(body.clone()).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], code, "{body}");
    };
    check(json!({"data": 1}), 400, "bad_request").await;
    check(json!({"channel": "chat:lobby"}), 400, "bad_request").await;
    check(
        json!({"channel": "chat:lobby", "data": 1, "extra": true}),
        400,
        "bad_request",
    )
    .await;
    // One bad channel among good ones: nothing is published.
    check(
        json!({"channels": ["chat:lobby", "no namespace"], "data": 1}),
        400,
        "invalid_channel",
    )
    .await;
    check(
        json!({"channels": ["chat:lobby", "ghost:x"], "data": 1}),
        404,
        "unknown_namespace",
    )
    .await;
    check(
        json!({"channel": "chat:lobby", "data": "x".repeat(70_000)}),
        413,
        "payload_too_large",
    )
    .await;

    let response = server
        .api(Method::POST, "/publish")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = server
        .api(Method::GET, "/channels/chat:lobby/history?since_offset=1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = server.api(Method::GET, "/nowhere").send().await.unwrap();
    assert_eq!(response.status(), 404);

    publish(json!({"channel": "chat:lobby", "data": "the only one"}))
        .await
        .unwrap();
    assert_eq!(watcher.next_publication().await, json!("the only one"));
}

#[tokio::test]
async fn a_retried_publish_with_an_idempotency_key_is_delivered_once() {
    let server = TestServer::start().await;
    let mut watcher = server.client("Watcher").await;
    watcher.subscribe("chat:lobby").await;
    let body = json!({"channel": "chat:lobby", "data": "once", "idempotency_key": "order-17"});
    let mut positions = Vec::new();
    for _ in 0..3 {
        let response: Value = server
            .api(Method::POST, "/publish")
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        positions.push(response["results"][0]["position"].clone());
    }
    assert!(
        positions.windows(2).all(|pair| pair[0] == pair[1]),
        "{positions:?}"
    );
    server
        .api(Method::POST, "/publish")
        .json(&json!({"channel": "chat:lobby", "data": "next"}))
        .send()
        .await
        .unwrap();
    assert_eq!(watcher.next_publication().await, json!("once"));
    assert_eq!(watcher.next_publication().await, json!("next"));
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let server = TestServer::start().await;
    let response = reqwest::get(server.url("/api/v1/openapi.json"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    for path in [
        "/publish",
        "/channels",
        "/channels/{channel}/presence",
        "/channels/{channel}/history",
    ] {
        assert!(document["paths"][path].is_object(), "{path} is documented");
    }
}

#[tokio::test]
async fn metrics_count_per_namespace_and_time_commands() {
    let server = TestServer::start().await;
    let mut alice = server.client("Alice").await;
    alice.subscribe("chat:lobby").await;
    alice.publish("chat:lobby", json!("hi")).await;
    let text = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        "rookery_connections 1",
        "rookery_subscriptions{namespace=\"chat\"} 1",
        "rookery_publications_total{namespace=\"chat\"} 1",
        "rookery_deliveries_total{namespace=\"chat\"} 1",
        "rookery_command_duration_seconds_count{command=\"publish\"} 1",
        "rookery_slow_consumer_disconnects_total 0",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}
